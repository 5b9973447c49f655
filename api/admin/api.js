// The JSON API, called with the key kept in this tab's sessionStorage.

const STORE = "warble.admin.key";

/** An error answer of the API: its HTTP status and stable code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => sessionStorage.getItem(STORE),
  set: (value) => sessionStorage.setItem(STORE, value),
  clear: () => sessionStorage.removeItem(STORE),
};

/** `method path` with the key; the parsed JSON body, text for non-JSON, or an ApiError. */
export async function call(method, path, secret = key.get()) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${secret}` },
    cache: "no-store",
  });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_" + response.status,
      error.message || response.statusText);
  }
  return body;
}

/** `?name=value&...` of the pairs whose value is set. */
export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}
