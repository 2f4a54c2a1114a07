// A site's live run: the seven stages' progress, credits, ETA and items, redrawn from the
// run's event stream; pause, resume and cancel where the status allows; run now.
import { ApiError, api, follow, get } from "./api.js";
import { bar, badge, duration, h } from "./ui.js";

const TERMINAL = new Set(["RunCompleted", "RunFailed", "RunCancelled"]);
const ACTIONS = [["pause", "Pause", ["running"]], ["resume", "Resume", ["paused"]],
  ["cancel", "Cancel run", ["running", "paused"]]];

function stageRow(stage, processing) {
  const here = processing && processing.stage === stage.stage ? processing : null;
  const total = stage.status === "completed" ? stage.processed : here ? here.total : null;
  const label = `Stage ${stage.stage}: ${stage.name}`;
  return h("li", { class: "stage" },
    h("span", {}, h("strong", {}, `${stage.stage}. ${stage.name}`), " ", badge(stage.status)),
    bar(stage.processed, total ?? 0, label),
    h("span", { class: "figures", "data-stage": stage.stage },
      stage.status === "pending" && !here ? "waiting"
        : `${stage.processed} of ${total ?? "?"} processed · ${stage.created} created · `
          + credits(stage.credits_used)));
}

const credits = (n) => `${n} credit${n === 1 ? "" : "s"}`;

function items(title, list) {
  return h("div", {}, h("strong", {}, title),
    list && list.length ? h("ul", { class: "items" }, list.map((item) => h("li", {}, item.title)))
      : h("p", { class: "note" }, "none"));
}

function runView(run, processing, act) {
  const buttons = ACTIONS.map(([action, label, allowed]) => h("button", {
    type: "button", class: action === "cancel" ? "secondary" : null,
    disabled: !allowed.includes(run.status), onclick: () => act(action),
  }, label));
  return [
    h("div", { class: "row" }, h("span", {}, "Status: ", badge(run.status)),
      h("span", {}, `Credits used ${run.total_credits_used} of an estimated `
        + `${run.estimated_credits} (${run.reserved_credits} reserved)`),
      h("span", {}, `ETA: ${duration(processing ? processing.eta_seconds : null)}`),
      h("a", { href: `#/runs/${run.run_id}` }, "Run details")),
    h("div", { class: "row controls", role: "group", "aria-label": "Run controls" }, buttons),
    run.error ? h("p", { class: "error" }, `Failed: ${run.error}`) : null,
    h("ol", { class: "stages", "aria-label": "Stages" }, run.stages.map((s) => stageRow(s, processing))),
    processing ? h("div", { class: "grid" }, items("In process", processing.current_items),
      items("Up next", processing.up_next)) : null,
  ];
}

function refusal(error) {
  if (!(error instanceof ApiError)) return error.message;
  if (error.code === "insufficient_credits") {
    return `Not enough credits: this run needs ${error.details.required} and the free balance `
      + `is ${error.details.balance}.`;
  }
  if (error.code === "run_in_progress") return "This site already has a run in progress.";
  return error.message.charAt(0).toUpperCase() + error.message.slice(1) + ".";
}

export function livePanel(siteId, signal, onChange) {
  const body = h("div", { "aria-live": "polite", "aria-busy": "false" });
  const problem = h("p", { class: "error", role: "alert" });
  const panel = h("section", { "aria-labelledby": "live-title" },
    h("h2", { id: "live-title" }, "Run"), problem, body);
  let run = null;
  let refreshing = null;
  let again = false;

  async function refresh() {
    // One refresh at a time; events arriving meanwhile ask for one more afterwards.
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      do {
        again = false;
        const [state, processing] = await Promise.all([
          get(`/api/v1/automation/runs/${run.run_id}/state`),
          get("/api/v1/automation/current_processing", { site_id: siteId, run_id: run.run_id }),
        ]);
        run = state.run;
        if (!signal.aborted) {
          body.replaceChildren(...runView(run, processing.processing, act).filter(Boolean));
        }
      } while (again);
    })().finally(() => { refreshing = null; });
    return refreshing;
  }

  async function act(action) {
    problem.textContent = "";
    try {
      await api("POST", `/api/v1/automation/${action}`, { params: { run_id: run.run_id } });
      await refresh();
    } catch (error) { problem.textContent = refusal(error); }
  }

  async function watch(runId, version) {
    run = { run_id: runId };
    await refresh();
    let after = version ?? 0;
    let ended = false;
    while (!signal.aborted) {
      try {
        await follow(runId, after, (event) => {
          after = event.version;
          ended = ended || TERMINAL.has(event.type);
          refresh().catch((error) => { if (!signal.aborted) problem.textContent = refusal(error); });
        }, signal);
      } catch {
        if (signal.aborted) return; // else the connection dropped: resume after `after`
      }
      if (ended) break;
      await refresh();
      if (!["running", "paused"].includes(run.status)) break;
      await new Promise((resume) => setTimeout(resume, 1000));
    }
    if (signal.aborted) return;
    await refresh();
    body.append(h("p", { class: "ok" }, `The run ended: ${run.status}.`), idle());
    onChange();
  }

  function idle() {
    const start = h("button", { type: "button" }, "Run now…");
    const box = h("div", { class: "row" }, start);
    start.addEventListener("click", async () => {
      problem.textContent = "";
      try {
        const estimate = await get("/api/v1/automation/estimate", { site_id: siteId });
        const go = h("button", { type: "button" }, "Start the run");
        const back = h("button", { type: "button", class: "secondary" }, "Not now");
        box.replaceChildren(h("p", { id: "estimate" },
          `Estimated ${estimate.estimated_credits} credits; ${estimate.required_credits} will be `
          + `reserved. Free balance: ${estimate.current_balance}.`,
          estimate.sufficient ? "" : " That is not enough for this run."), go, back);
        back.addEventListener("click", () => box.replaceWith(idle()));
        go.focus();
        go.addEventListener("click", async () => {
          try {
            const started = await api("POST", "/api/v1/automation/run_now", { params: { site_id: siteId } });
            body.replaceChildren();
            onChange();
            watch(started.run_id, 0).catch((error) => { problem.textContent = refusal(error); });
          } catch (error) { problem.textContent = refusal(error); }
        });
      } catch (error) { problem.textContent = refusal(error); }
    });
    return box;
  }

  (async () => {
    const current = await get("/api/v1/automation/current_run", { site_id: siteId });
    if (current.run) await watch(current.run.run_id, 0);
    else body.replaceChildren(h("p", {}, "No run in progress."), idle());
  })().catch((error) => { problem.textContent = refusal(error); });
  return panel;
}
