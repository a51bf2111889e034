// The API and sign-in: Identity Toolkit REST (the Auth emulator locally), the ID token kept in sessionStorage
// and refreshed a minute before it expires; every API call sends it. Same origin as the API: no CORS.
const SESSION_KEY = "yolodrop.session";
const GOOGLE_KEY = "yolodrop.google";  // the state and nonce of a Google sign-in under way
let config = null;
let session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function loadConfig() {
  config = config || await (await fetch("page/config")).json();
  return config;
}

export function signedIn() { return session; }

function keep(next) {
  session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
}

async function identity(url, init) {
  const response = await fetch(`${url}?key=${encodeURIComponent(config.auth.api_key)}`, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, {error: {message: readable(body.error?.message)}});
  return body;
}

function readable(code) {
  const known = {EMAIL_NOT_FOUND: "No account with that e-mail.", INVALID_PASSWORD: "Wrong password.",
                 INVALID_LOGIN_CREDENTIALS: "Wrong e-mail or password.", USER_DISABLED: "This account is disabled."};
  return known[(code || "").split(" ")[0]] || code || "Sign-in failed.";
}

export async function signIn(email, password) {
  return keepSignedIn(await identity(config.auth.sign_in, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({email, password, returnSecureToken: true})}));
}

function keepSignedIn(body) {
  keep({uid: body.localId, email: body.email, token: body.idToken, refresh: body.refreshToken,
        expires: Date.now() + Number(body.expiresIn) * 1000});
  return session;
}

// ---- Google: OAuth's implicit flow for an ID token, which Identity Toolkit's signInWithIdp exchanges ----

export function googleSignIn() { return config.google; }

function pageAddress() { return location.origin + location.pathname; }

function randomText() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Google sends the person back to the page with #state=…&id_token=… (or #error=…); the router's hashes start "#/".
export function isGoogleAnswer(hash) {
  if (hash.startsWith("#/")) return false;
  const answer = new URLSearchParams(hash.slice(1));
  return answer.has("state") && (answer.has("id_token") || answer.has("error"));
}

// To Google's page with a fresh state (this page asked) and nonce (this sign-in's token). Locally the Auth
// emulator stands in for Google: it takes an unsigned token naming the account, so the page answers itself
// the way Google would, and the rest of the way is the same.
export function startGoogleSignIn(emulatedEmail) {
  const state = randomText(), nonce = randomText();
  sessionStorage.setItem(GOOGLE_KEY, JSON.stringify({state, nonce}));
  if (config.google.emulator) {
    const claims = {sub: `emulated-${emulatedEmail}`, email: emulatedEmail, email_verified: true, nonce};
    location.hash = "#" + new URLSearchParams({state, id_token: unsignedToken(claims)});
    return;
  }
  const url = new URL(config.google.authorize);
  url.search = new URLSearchParams({client_id: config.google.client_id, redirect_uri: pageAddress(),
                                    response_type: "id_token", scope: "openid email profile", state, nonce,
                                    prompt: "select_account"});
  location.assign(url.href);
}

export async function finishGoogleSignIn(hash) {
  const answer = new URLSearchParams(hash.slice(1));
  const started = JSON.parse(sessionStorage.getItem(GOOGLE_KEY) || "null");
  sessionStorage.removeItem(GOOGLE_KEY);
  history.replaceState(null, "", pageAddress() + location.search);  // the token leaves the address bar
  if (answer.get("error")) throw new Error(`Google did not sign you in (${answer.get("error")}). Try again.`);
  if (!started || answer.get("state") !== started.state) {
    throw new Error("That Google answer was not asked for by this page. Sign in again.");
  }
  if (claimsOf(answer.get("id_token"))?.nonce !== started.nonce) {
    throw new Error("That Google token belongs to another sign-in. Sign in again.");
  }
  return keepSignedIn(await identity(config.auth.sign_in_idp, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({postBody: new URLSearchParams({id_token: answer.get("id_token"), providerId: "google.com"})
                            .toString(), requestUri: pageAddress(), returnSecureToken: true})}));
}

function base64url(text) {
  const bytes = String.fromCharCode(...new TextEncoder().encode(text));
  return btoa(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unsignedToken(claims) {
  return `${base64url(JSON.stringify({alg: "none", typ: "JWT"}))}.${base64url(JSON.stringify(claims))}.`;
}

function claimsOf(token) {
  try {
    const payload = (token || "").split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = atob(payload.padEnd(Math.ceil(payload.length / 4) * 4, "="));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0))));
  } catch { return null; }
}

export function signOut() { keep(null); }

async function freshToken() {
  if (!session) throw new ApiError(401, {error: {message: "Sign in first."}});
  if (session.expires - Date.now() > 60_000) return session.token;
  const body = await identity(config.auth.refresh, {
    method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams({grant_type: "refresh_token", refresh_token: session.refresh})});
  keep({...session, token: body.id_token, refresh: body.refresh_token,
        expires: Date.now() + Number(body.expires_in) * 1000});
  return session.token;
}

export async function authorized(url, init = {}) {
  const headers = {...(init.headers || {}), Authorization: `Bearer ${await freshToken()}`};
  const response = await fetch(url, {...init, headers});
  if (response.status === 401) { signOut(); location.hash = "#/signin"; }
  return response;
}

export async function api(path, {method = "GET", body, headers = {}} = {}) {
  const init = {method, headers: {...headers}};
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await authorized(path.replace(/^\//, ""), init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

export const q = (params) => {
  const kept = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return kept.length ? "?" + new URLSearchParams(kept).toString() : "";
};
export const enc = (id) => id.split("/").map(encodeURIComponent).join("/");

// Images need the Authorization header, which <img src> cannot send: fetch them (the browser's HTTP cache
// still applies: ETag and Cache-Control), hand <img> an object URL, at most SLOTS at a time.
const SLOTS = 8;
let running = 0;
const waiting = [];

export function imageUrl(path) {
  return new Promise((resolve, reject) => {
    waiting.push({path, resolve, reject});
    pump();
  });
}

function pump() {
  while (running < SLOTS && waiting.length) {
    const {path, resolve, reject} = waiting.shift();
    running++;
    authorized(path.replace(/^\//, ""))
      .then(async (r) => r.ok ? resolve(URL.createObjectURL(await r.blob())) : reject(new ApiError(r.status)))
      .catch(reject)
      .finally(() => { running--; pump(); });
  }
}

export const PREDICT_FLOOR = 0.001;  // try-it asks once at this confidence; its slider filters what came back

export async function predict(modelId, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const url = `${config.predict_url}/models/${encodeURIComponent(modelId)}/predict?conf=${PREDICT_FLOOR}`;
  const response = await authorized(url, {method: "POST", body: form});
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

// A file the API streams as a download (weights, an export's zip): fetched with the token, then saved.
export async function download(path, filename) {
  const response = await authorized(path.replace(/^\//, ""));
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => ({})));
  const url = URL.createObjectURL(await response.blob());
  const a = Object.assign(document.createElement("a"), {href: url, download: filename});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
