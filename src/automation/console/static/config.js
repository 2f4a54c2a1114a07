// A site's config form, each refused field's message beside it, and the schedule preview.
import { api, get } from "./api.js";
import { explain, field, h, notFound, showFieldErrors, table } from "./ui.js";

const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const NUMBERS = [
  ["stage_1_batch_size", "Stage 1 batch size (keywords)", 1, 1000],
  ["stage_2_batch_size", "Stage 2 batch size (clusters)", 1, 1000],
  ["stage_3_batch_size", "Stage 3 batch size (ideas)", 1, 1000],
  ["stage_4_batch_size", "Stage 4 batch size (tasks)", 1, 1000],
  ["stage_5_batch_size", "Stage 5 batch size (content)", 1, 1000],
  ["stage_6_batch_size", "Stage 6 batch size (image prompts)", 1, 1000],
  ["within_stage_delay", "Delay between batches (s)", 0, 86400],
  ["between_stage_delay", "Delay between stages (s)", 0, 86400],
  ["scheduled_day_of_month", "Day of month (monthly)", 1, 31],
];

function select(value, options) {
  return h("select", {}, options.map(([v, label]) => h("option", { value: v, selected: String(v) === String(value) }, label)));
}

// What the user typed, as the API's types; anything else is sent as typed, so the service
// names the problem (one set of rules, the service's).
function number(text) {
  return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text === "" ? null : text;
}

function form(config) {
  return h("form", { novalidate: true, "aria-labelledby": "config-title" },
    h("h2", { id: "config-title" }, "Configuration"),
    field("is_enabled", "Run on the schedule", h("input", { type: "checkbox", checked: config.is_enabled })),
    h("div", { class: "fields" },
      field("frequency", "Frequency", select(config.frequency,
        [["daily", "Daily"], ["weekly", "Weekly"], ["monthly", "Monthly"]])),
      field("scheduled_time", "Time (HH:MM, site's timezone)", h("input", { type: "text", value: config.scheduled_time, inputmode: "numeric" })),
      field("scheduled_weekday", "Weekday (weekly)", select(config.scheduled_weekday,
        WEEKDAYS.map((name, i) => [i, name]))),
      field("timezone", "Timezone", h("input", { type: "text", value: config.timezone })),
      NUMBERS.map(([name, label, min, max]) => field(name, label,
        h("input", { type: "text", inputmode: "numeric", value: config[name] }), `${min} to ${max}`))),
    h("p", { class: "error", role: "alert" }), h("p", { class: "ok", role: "status" }),
    h("button", { type: "submit" }, "Save"));
}

function values(f) {
  const body = {
    is_enabled: f.elements.is_enabled.checked,
    frequency: f.elements.frequency.value,
    scheduled_time: f.elements.scheduled_time.value.trim(),
    scheduled_weekday: Number(f.elements.scheduled_weekday.value),
    timezone: f.elements.timezone.value.trim(),
  };
  for (const [name] of NUMBERS) body[name] = number(f.elements[name].value);
  return body;
}

async function preview(siteId, into) {
  const [answer, config] = await Promise.all([
    get("/api/v1/automation/schedule_preview", { site_id: siteId, count: 5 }),
    get("/api/v1/automation/config", { site_id: siteId }),
  ]);
  into.replaceChildren(h("h2", {}, "Schedule preview"),
    h("p", { class: "note" }, config.is_enabled ? "The next fire times of the saved schedule."
      : "The schedule is off; these are the times it would fire."),
    table("Next fire times", [[`Local (${answer.timezone})`], ["UTC"]],
      answer.fire_times.map((t) => [t.local.replace("T", " "), t.utc.replace("T", " ")])));
}

export async function configPage(main, siteId) {
  let config;
  try {
    config = await get("/api/v1/automation/config", { site_id: siteId });
  } catch (error) {
    if (error.status === 404 || error.status === 400) { main.replaceChildren(notFound("Site")); return; }
    throw error;
  }
  const f = form(config);
  const schedule = h("section", { "aria-label": "Schedule preview" });
  f.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [problem, done] = f.querySelectorAll(".error, .ok");
    problem.textContent = "";
    done.textContent = "";
    try {
      await api("PUT", "/api/v1/automation/update_config", { params: { site_id: siteId }, body: values(f) });
      showFieldErrors(f, null);
      done.textContent = "Saved.";
      await preview(siteId, schedule);
    } catch (error) {
      const beside = showFieldErrors(f, error);
      problem.textContent = beside ? "Some values were not accepted: see the fields marked." : explain(error);
    }
  });
  main.replaceChildren(h("h1", {}, "Configuration"),
    h("p", {}, h("a", { href: `#/sites/${siteId}` }, "Back to the site")),
    h("div", { class: "grid" }, h("section", {}, f), schedule));
  await preview(siteId, schedule);
}
