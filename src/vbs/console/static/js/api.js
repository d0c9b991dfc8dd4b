// The one place the console talks HTTP: the public API with the session token.
// Every error body the service sends (VBS ext-error, Cinder fault, Keystone error)
// becomes an ApiError carrying the API's own code and message.

const SESSION_KEY = "vbs.console.session";

/** Service root: the console lives at <root>/console/, the API at <root>/. */
export const ROOT = location.pathname.replace(/\/console(\/.*)?$/, "");

/** Microversion for native v3 calls: metadata (3.43) and with_count (3.45). */
export const MICROVERSION = "volume 3.45";

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status
   * @param {string} code the API's code ("VolumeBackup.0021", "itemNotFound 404", "401 Unauthorized")
   * @param {string} message the API's message
   */
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.apiMessage = message;
  }
}

/** Turn an error body of any of the service's wire formats into (code, message). */
function describeError(status, body) {
  if (body && typeof body === "object") {
    const keys = Object.keys(body);
    if (body.error && typeof body.error === "object") {
      const e = body.error;
      if (typeof e.code === "string") return [e.code, String(e.message ?? "")];
      // Keystone: {"error": {"code": 401, "title": "Unauthorized", "message": ...}}
      return [`${e.code ?? status} ${e.title ?? ""}`.trim(), String(e.message ?? "")];
    }
    if (keys.length === 1 && body[keys[0]] && typeof body[keys[0]] === "object") {
      const fault = body[keys[0]]; // Cinder: {"itemNotFound": {"code": 404, "message": ...}}
      return [`${keys[0]} ${fault.code ?? status}`, String(fault.message ?? "")];
    }
  }
  return [`HTTP ${status}`, typeof body === "string" && body ? body : "The service gave no reason."];
}

export function loadSession() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    if (s.expiresAt && Date.parse(s.expiresAt) <= Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

let onUnauthorized = () => {};
/** Called when a request with the session token answers 401 (token gone or expired). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/**
 * One API request. `path` may hold "{p}" for the session's project id.
 * Returns {status, headers, body}; throws ApiError for any non-2xx answer.
 */
export async function request(method, path, { body, headers = {}, auth = true, native = false } = {}) {
  const session = loadSession();
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (auth && session) h["X-Auth-Token"] = session.token;
  if (native) h["OpenStack-API-Version"] = MICROVERSION;
  const url = ROOT + (session ? path.replaceAll("{p}", session.project.id) : path);
  let resp;
  try {
    resp = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "network", `The service did not answer (${err.message}).`);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!resp.ok) {
    const [code, message] = describeError(resp.status, data);
    const error = new ApiError(resp.status, code, message);
    if (resp.status === 401 && auth && session) onUnauthorized(error);
    throw error;
  }
  return { status: resp.status, headers: resp.headers, body: data };
}

export const get = (path, opts) => request("GET", path, opts).then((r) => r.body);
export const post = (path, body, opts = {}) => request("POST", path, { ...opts, body }).then((r) => r.body);
export const put = (path, body, opts = {}) => request("PUT", path, { ...opts, body }).then((r) => r.body);
export const del = (path, opts) => request("DELETE", path, opts).then((r) => r.body);

/**
 * Keystone v3 password login scoped to a project (the flow every OpenStack client uses).
 * The token is the X-Subject-Token response header; the body names project and roles.
 */
export async function login(user, password, project, domain = "Default") {
  const body = {
    auth: {
      identity: { methods: ["password"], password: { user: { name: user, domain: { name: domain }, password } } },
      scope: { project: { name: project, domain: { name: domain } } },
    },
  };
  const r = await request("POST", "/identity/v3/auth/tokens", { body, auth: false });
  const token = r.headers.get("X-Subject-Token");
  if (!token) throw new ApiError(r.status, "no-token", "The login answer carried no X-Subject-Token header.");
  const t = r.body.token;
  const session = {
    token,
    expiresAt: t.expires_at,
    user: { id: t.user.id, name: t.user.name },
    project: { id: t.project.id, name: t.project.name },
    roles: (t.roles || []).map((role) => role.name),
  };
  saveSession(session);
  return session;
}

/** Revoke the token (best effort) and forget the session. */
export async function logout() {
  const session = loadSession();
  if (session) {
    try {
      await request("DELETE", "/identity/v3/auth/tokens", { headers: { "X-Subject-Token": session.token } });
    } catch {
      // The token may already be gone; the session is dropped either way.
    }
  }
  saveSession(null);
}
