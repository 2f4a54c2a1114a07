// The console's only way to the data: the public HTTP API, with the signed-in token.
// The token lives in sessionStorage (this tab only, gone when it closes) and never in a URL.
const KEY = "automation.token";

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  signIn(token) { sessionStorage.setItem(KEY, token); },
  signOut() { sessionStorage.removeItem(KEY); },
  onExpired: () => {},
};

export class ApiError extends Error {
  constructor(status, error) {
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.details = error.details || {};
  }
}

function address(path, params) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
  }
  return url;
}

function headers(token, extra) {
  return { Authorization: `Bearer ${token ?? session.token}`, ...extra };
}

async function failure(answer, token) {
  let body = null;
  try { body = await answer.json(); } catch { body = null; }
  const error = body && body.error
    ? body.error
    : { code: `http_${answer.status}`, message: `the service answered ${answer.status}` };
  // A token that stops working mid-session (revoked) ends the session; a sign-in attempt
  // passes its own token and handles the 401 itself.
  if (answer.status === 401 && token === undefined) session.onExpired();
  return new ApiError(answer.status, error);
}

export async function api(method, path, { params, body, token } = {}) {
  const init = { method, headers: headers(token) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let answer;
  try {
    answer = await fetch(address(path, params), init);
  } catch {
    throw new ApiError(0, { code: "network", message: "the service cannot be reached" });
  }
  if (!answer.ok) throw await failure(answer, token);
  return answer.status === 204 ? null : answer.json();
}

export const get = (path, params) => api("GET", path, { params });

// The run's event stream. EventSource cannot send an Authorization header, so the stream is
// read with fetch and parsed here: each message's data is one event, as in the events list.
export async function follow(runId, afterVersion, onEvent, signal) {
  const path = `/api/v1/automation/runs/${encodeURIComponent(runId)}/stream`;
  const answer = await fetch(address(path, { after_version: afterVersion }), {
    headers: headers(undefined, { Accept: "text/event-stream" }),
    signal,
  });
  if (!answer.ok) throw await failure(answer);
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      buffer = buffer.slice(end + 2);
      if (data) onEvent(JSON.parse(data));
    }
  }
}
