// The public API, with the key from session storage in the X-API-Key header (never in a URL).
const KEY = "rillet.key";
const SCOPE = "rillet.scope";
let pending = 0;

export const session = {
  key: () => sessionStorage.getItem(KEY),
  scope: () => sessionStorage.getItem(SCOPE),
  canWrite: () => sessionStorage.getItem(SCOPE) === "write",
  save(key, scope) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(SCOPE, scope);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(SCOPE);
  },
};

/** An error answered by the API, in its words ({"error": {"code", "message", "line"?}}). */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `the server answered ${status}`);
    this.status = status;
    this.code = error?.code || "error";
    this.line = error?.line;
  }
}

function busy(delta) {
  pending += delta;
  const el = document.getElementById("busy");
  if (el) el.hidden = pending === 0;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's page; the status says enough
  }
  return new ApiError(response.status, body?.error);
}

/** fetch with the key; a non-2xx answer throws ApiError. */
export async function call(path, { method = "GET", body, headers = {}, signal, key } = {}) {
  busy(1);
  try {
    const response = await fetch(path, {
      method,
      body,
      signal,
      headers: { "X-API-Key": key ?? session.key() ?? "", ...headers },
    });
    if (!response.ok) throw await failure(response);
    return response;
  } finally {
    busy(-1);
  }
}

export async function json(path, options) {
  const response = await call(path, options);
  return response.status === 204 ? null : response.json();
}

/** Server-sent events read from a fetch (EventSource cannot send a header): {event, data}. */
export async function* events(path, options = {}) {
  const headers = { Accept: "text/event-stream", ...(options.headers || {}) };
  const response = await call(path, { ...options, headers });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) yield { event: name, data: JSON.parse(data) };
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Upload a file with XMLHttpRequest, for its upload progress (fetch has none). */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/datasets");
    xhr.setRequestHeader("X-API-Key", session.key() ?? "");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 202) resolve(body);
      else reject(new ApiError(xhr.status, body?.error));
    };
    xhr.onerror = () => reject(new ApiError(0, { message: "the upload could not reach the server" }));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** Download an answer as a file: fetched with the key in a header, handed over as a Blob. */
export async function download(path, filename) {
  const blob = await (await call(path)).blob();
  saveBlob(blob, filename);
}

export function saveBlob(blob, filename) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
