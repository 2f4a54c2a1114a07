// The console's entry: sign-in, sign-out and the routes (in the URL's fragment, so the
// server serves one page and no id or token ever reaches a server log through a path).
import { ApiError, api, session } from "./api.js";
import { runPage } from "./run.js";
import { configPage } from "./config.js";
import { sitePage } from "./site.js";
import { sitesPage } from "./sites.js";
import { announce, h } from "./ui.js";

const main = document.getElementById("main");
const signOutButton = document.getElementById("sign-out");
let leave = new AbortController(); // aborts the current page's streams and polls

const routes = [
  [/^#\/sites\/([^/]+)\/config$/, configPage],
  [/^#\/sites\/([^/]+)$/, sitePage],
  [/^#\/runs\/([^/]+)$/, runPage],
  [/^(#\/?)?$/, sitesPage],
];

function signInPage(message) {
  const input = h("input", {
    id: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "sign-in-error sign-in-hint", spellcheck: "false",
  });
  const problem = h("p", { class: "error", id: "sign-in-error", role: "alert" },
    message && message.error ? message.error : "");
  const said = h("p", { class: "note", role: "status" }, message && message.note ? message.note : "");
  const form = h("form", { class: "panel", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("label", { for: "token" }, "Account token"), input,
    h("p", { class: "note", id: "sign-in-hint" },
      "A token from `automation admin create-account` or `create-token`. It is kept in this tab only."),
    said, problem, h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    try {
      await api("GET", "/api/v1/sites", { token });
    } catch (error) {
      said.textContent = "";
      problem.textContent = error instanceof ApiError && error.status === 401
        ? "This token was not accepted." : `Sign-in failed: ${error.message}.`;
      input.focus();
      return;
    }
    session.signIn(token);
    render();
  });
  main.replaceChildren(form);
  input.focus();
}

function signOut(message) {
  session.signOut();
  leave.abort();
  render(message);
}

async function render(message) {
  leave.abort();
  leave = new AbortController();
  signOutButton.hidden = !session.token;
  if (!session.token) {
    // The announcement too: nothing of the signed-out session stays on the page.
    announce((message && (message.note || message.error)) || "Sign in");
    signInPage(message);
    return;
  }
  const hash = location.hash;
  for (const [pattern, page] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    main.replaceChildren(h("p", { class: "note" }, "Loading…"));
    try {
      await page(main, decodeURIComponent(match[1] || ""), leave.signal);
    } catch (error) {
      if (leave.signal.aborted) return;
      main.replaceChildren(h("section", {}, h("h1", {}, "Something went wrong"),
        h("p", { class: "error", role: "alert" }, error.message)));
    }
    announce(document.querySelector("main h1")?.textContent || "");
    return;
  }
  main.replaceChildren(h("section", {}, h("h1", {}, "Page not found"),
    h("p", {}, h("a", { href: "#/" }, "Back to the sites"))));
}

session.onExpired = () => signOut({ error: "The session has ended: the token is no longer accepted." });
signOutButton.addEventListener("click", () => {
  history.replaceState(null, "", "#/");
  signOut({ note: "Signed out." });
});
window.addEventListener("hashchange", async () => {
  await render();
  main.focus({ preventScroll: true }); // keyboard users start at the new page's content
});
render();
