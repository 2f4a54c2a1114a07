// A site's page: its live run, keyword import, pipeline overview and history.
import { api, get } from "./api.js";
import { livePanel } from "./live.js";
import { badge, explain, field, h, notFound, showFieldErrors, table, when } from "./ui.js";

function keywordsForm(siteId, onImported) {
  const result = h("p", { class: "ok", role: "status" });
  const form = h("form", { novalidate: true, "aria-labelledby": "kw-title" },
    h("h2", { id: "kw-title" }, "Import keywords"),
    field("keywords", "Keywords, one per line", h("textarea", { rows: 6 }),
      "Duplicates, here or already stored, are counted and skipped."),
    h("p", { class: "error", role: "alert" }), result,
    h("button", { type: "submit" }, "Import"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "";
    form.querySelector(".error").textContent = "";
    const keywords = form.elements.keywords.value.split("\n").map((k) => k.trim()).filter(Boolean);
    try {
      const answer = await api("POST", "/api/v1/planner/keywords",
        { params: { site_id: siteId }, body: { keywords } });
      showFieldErrors(form, null);
      result.textContent = `Imported ${answer.created} keywords (${answer.duplicates} duplicates).`;
      form.elements.keywords.value = "";
      onImported();
    } catch (error) {
      if (!showFieldErrors(form, error)) form.querySelector(".error").textContent = explain(error);
    }
  });
  return h("section", {}, form);
}

async function overview(siteId, into) {
  const { stages } = await get("/api/v1/automation/pipeline_overview", { site_id: siteId });
  into.replaceChildren(h("h2", { id: "pipeline-title" }, "Pipeline"),
    table("Pending and done per stage", [["Stage"], ["Pending", true], ["Done", true]],
      stages.map((s) => [`${s.stage}. ${s.name}`, s.pending, s.done])));
}

async function history(siteId, into) {
  const { runs } = await get("/api/v1/automation/history", { site_id: siteId });
  into.replaceChildren(h("h2", {}, "History"), runs.length === 0 ? h("p", {}, "No runs yet.")
    : table("Last runs", [["Started"], ["Status"], ["Trigger"], ["Ended"], ["Credits", true]],
      runs.map((r) => [h("a", { href: `#/runs/${r.run_id}` }, when(r.started_at)),
        badge(r.status), r.trigger_type, when(r.completed_at), r.total_credits_used])));
}

async function facts(siteId, into) {
  const config = await get("/api/v1/automation/config", { site_id: siteId });
  into.replaceChildren(h("span", {}, `Timezone ${config.timezone}`),
    h("span", {}, "Last run: ", when(config.last_run_at)),
    h("span", {}, "Next run: ", config.is_enabled ? when(config.next_run_at) : "schedule off"),
    h("a", { href: `#/sites/${siteId}/config` }, "Configuration and schedule"));
}

export async function sitePage(main, siteId, signal) {
  let config;
  try {
    config = await get("/api/v1/automation/config", { site_id: siteId });
  } catch (error) {
    // Another account's site is answered exactly like one that does not exist.
    if (error.status === 404 || error.status === 400) { main.replaceChildren(notFound("Site")); return; }
    throw error;
  }
  const { results } = await get("/api/v1/sites");
  const site = results.find((s) => s.site_id === siteId);
  const pipeline = h("section", { "aria-labelledby": "pipeline-title" });
  const past = h("section", { "aria-label": "History" });
  const about = h("p", { class: "row" });
  const reload = () => Promise.all([overview(siteId, pipeline), history(siteId, past),
    facts(siteId, about)]);
  main.replaceChildren(
    h("h1", {}, site ? site.name : "Site"),
    about,
    livePanel(siteId, signal, reload),
    h("div", { class: "grid" }, keywordsForm(siteId, reload), pipeline),
    past);
  await reload();
}
