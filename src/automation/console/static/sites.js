// The sites page: each site's state, last and next run, the account's credits, a new site.
import { api, get } from "./api.js";
import { badge, explain, field, h, showFieldErrors, table, when } from "./ui.js";

async function siteRow(site) {
  const [current, config] = await Promise.all([
    get("/api/v1/automation/current_run", { site_id: site.site_id }),
    get("/api/v1/automation/config", { site_id: site.site_id }),
  ]);
  return { site, run: current.run, config };
}

function credits(rows, balance) {
  // A run holds what is left of its reservation until it ends.
  const reserved = rows.reduce((sum, { run }) =>
    sum + (run ? Math.max(0, run.reserved_credits - run.total_credits_used) : 0), 0);
  return h("p", { class: "row", id: "credits" },
    h("span", {}, "Free credits: ", h("strong", {}, balance ?? "—")),
    h("span", {}, "Reserved by runs in progress: ", h("strong", {}, reserved)));
}

function newSiteForm() {
  const zones = h("datalist", { id: "zones" },
    (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"])
      .map((zone) => h("option", { value: zone })));
  const form = h("form", { novalidate: true, "aria-labelledby": "new-site" },
    h("h2", { id: "new-site" }, "New site"),
    h("div", { class: "fields" },
      field("name", "Name", h("input", { type: "text", maxlength: 200, required: true })),
      field("timezone", "Timezone", h("input", { type: "text", list: "zones", value: "UTC" }),
        "An IANA name, e.g. Europe/Berlin")),
    zones, h("p", { class: "error", role: "alert" }),
    h("button", { type: "submit" }, "Create site"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: form.elements.name.value, timezone: form.elements.timezone.value };
    try {
      const site = await api("POST", "/api/v1/sites", { body });
      location.hash = `#/sites/${site.site_id}`;
    } catch (error) {
      if (!showFieldErrors(form, error)) form.querySelector(".error").textContent = explain(error);
    }
  });
  return h("section", {}, form);
}

export async function sitesPage(main) {
  const { results } = await get("/api/v1/sites");
  const rows = await Promise.all(results.map(siteRow));
  const balance = results.length
    ? (await get("/api/v1/automation/estimate", { site_id: results[0].site_id })).current_balance
    : null;
  const listing = rows.length === 0
    ? h("p", {}, "No sites yet: create the first one below.")
    : table("Sites", [["Site"], ["Timezone"], ["State"], ["Last run"], ["Next run"]],
      rows.map(({ site, run, config }) => [
        h("a", { href: `#/sites/${site.site_id}` }, site.name),
        site.timezone,
        badge(run ? run.status : "idle"),
        when(config.last_run_at),
        config.is_enabled ? when(config.next_run_at) : "schedule off",
      ]));
  main.replaceChildren(h("h1", {}, "Sites"),
    h("section", { "aria-label": "Sites and credits" }, credits(rows, balance), listing),
    newSiteForm());
}
