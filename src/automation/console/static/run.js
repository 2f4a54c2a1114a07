// A run's page: facts, credits per stage as a chart, its state at any version (time
// travel), its event timeline and its log tail. All of it read from the event store.
import { get } from "./api.js";
import { badge, bar, h, notFound, table, when } from "./ui.js";

const SHOWN = ["stage", "batch", "processed", "created", "credits", "amount", "trigger_type",
  "estimated_credits", "reserved_credits", "error"];

async function allEvents(runId) {
  const events = [];
  for (;;) {
    const page = await get(`/api/v1/automation/runs/${runId}/events`,
      { after_version: events.length ? events[events.length - 1].version : 0, limit: 1000 });
    events.push(...page.events);
    if (page.events.length < 1000) return events;
  }
}

function chart(run) {
  const most = Math.max(1, ...run.stages.map((s) => s.credits_used));
  return h("figure", { class: "chart", "aria-labelledby": "chart-title" },
    h("figcaption", { id: "chart-title" }, h("h2", {}, "Credits per stage")),
    h("ol", { class: "stages" }, run.stages.map((s) => h("li", { class: "stage" },
      h("span", {}, `${s.stage}. ${s.name}`),
      bar(s.credits_used, most, `Stage ${s.stage} credits`),
      h("span", { class: "figures" }, `${s.credits_used} credit${s.credits_used === 1 ? "" : "s"}`)))));
}

function facts(run) {
  return h("dl", { class: "facts" },
    h("dt", {}, "Status"), h("dd", {}, badge(run.status)),
    h("dt", {}, "Trigger"), h("dd", {}, run.trigger_type),
    h("dt", {}, "Started"), h("dd", {}, when(run.started_at)),
    h("dt", {}, "Ended"), h("dd", {}, when(run.completed_at)),
    h("dt", {}, "Credits"), h("dd", {}, `${run.total_credits_used} used of an estimated `
      + `${run.estimated_credits} (${run.reserved_credits} reserved)`),
    run.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, run.error)] : null);
}

function stateAt(run, version) {
  return [h("p", {}, `After event ${version}: `, badge(run.status), ` · stage ${run.current_stage}`
    + ` · ${run.total_credits_used} credits used`),
  table(`State after event ${version}`, [["Stage"], ["Status"], ["Processed", true],
    ["Created", true], ["Credits", true]], run.stages.map((s) =>
    [`${s.stage}. ${s.name}`, badge(s.status), s.processed, s.created, s.credits_used]))];
}

function summary(event) {
  return SHOWN.filter((k) => event.data[k] !== undefined && event.data[k] !== null)
    .map((k) => `${k} ${event.data[k]}`).join(", ");
}

export async function runPage(main, runId) {
  let latest;
  try {
    latest = await get(`/api/v1/automation/runs/${runId}/state`);
  } catch (error) {
    // Another account's run is answered exactly like one that does not exist.
    if (error.status === 404 || error.status === 400) { main.replaceChildren(notFound("Run")); return; }
    throw error;
  }
  const [events, logs] = await Promise.all([allEvents(runId),
    get("/api/v1/automation/logs", { run_id: runId, lines: 200 })]);
  const run = latest.run;
  const slider = h("input", { id: "version", type: "range", min: 1, max: latest.version,
    value: latest.version, "aria-describedby": "version-now" });
  const now = h("output", { id: "version-now", for: "version" }, String(latest.version));
  const state = h("div", {}, stateAt(run, latest.version));
  async function travel(version) {
    slider.value = version;
    now.textContent = String(version);
    const answer = await get(`/api/v1/automation/runs/${runId}/state`, { version });
    state.replaceChildren(...stateAt(answer.run, version));
  }
  slider.addEventListener("change", () => travel(Number(slider.value)));
  main.replaceChildren(
    h("h1", {}, "Run ", h("code", {}, runId.slice(0, 8))),
    h("p", {}, h("a", { href: `#/sites/${run.site_id}` }, "Back to the site")),
    h("div", { class: "grid" }, h("section", {}, h("h2", {}, "Summary"), facts(run)),
      h("section", {}, chart(run))),
    h("section", { "aria-labelledby": "travel-title" },
      h("h2", { id: "travel-title" }, "State at any version"),
      h("label", { for: "version" }, "Event version "), slider, " ", now, state),
    h("div", { class: "grid" },
      h("section", { "aria-labelledby": "timeline-title" },
        h("h2", { id: "timeline-title" }, `Event timeline (${events.length})`),
        h("ol", { class: "timeline" }, events.map((e) => h("li", { value: e.version },
          h("strong", {}, e.type), " ", when(e.timestamp), " ", summary(e), " ",
          h("button", { type: "button", class: "secondary", onclick: () => travel(e.version),
            "aria-label": `Show the state after event ${e.version}` }, "state"))))),
      h("section", { "aria-labelledby": "log-title" }, h("h2", { id: "log-title" }, "Log"),
        h("pre", { class: "log", tabindex: 0 }, logs.lines.join("\n")))));
}
