// The shell: sign-in, the header, and the hash router that picks a view. Each view is a module with
// render(main, route) that fills <main>; views load on demand, so the first load carries only what it shows.
import {api, finishGoogleSignIn, googleSignIn, isGoogleAnswer, loadConfig, signedIn, signIn, signOut,
        startGoogleSignIn} from "./api.js";
import {h, failure, link} from "./dom.js";

const VIEWS = [
  [/^#\/signin$/, () => ({render: renderSignIn})],
  [/^#\/?$/, () => import("./datasets.js")],
  [/^#\/d\/([^/]+)$/, () => import("./datasets.js"), "dataset"],
  [/^#\/d\/([^/]+)\/gallery$/, () => import("./gallery.js")],
  [/^#\/d\/([^/]+)\/issues$/, () => import("./issues.js")],
  [/^#\/d\/([^/]+)\/image\/(.+)$/, () => import("./image.js")],
  [/^#\/d\/([^/]+)\/train$/, () => import("./training.js")],
  [/^#\/d\/([^/]+)\/versions$/, () => import("./versions.js")],
  [/^#\/d\/([^/]+)\/imports$/, () => import("./imports.js")],
  [/^#\/d\/([^/]+)\/jobs$/, () => import("./jobs.js")],
  [/^#\/jobs$/, () => import("./jobs.js"), "all"],
  [/^#\/d\/([^/]+)\/members$/, () => import("./people.js"), "members"],
  [/^#\/keys$/, () => import("./people.js"), "keys"],
  [/^#\/training$/, () => import("./training.js"), "jobs"],
  [/^#\/job\/([^/]+)$/, () => import("./training.js"), "job"],
  [/^#\/models$/, () => import("./models.js")],
  [/^#\/model\/([^/]+)$/, () => import("./models.js"), "model"],
];

let stopCurrent = null;
let signInProblem = "";  // why the last Google sign-in failed, shown on the sign-in page

export function parseHash() {
  const [path, query = ""] = location.hash.split("?");
  return {path: path || "#/", query: new URLSearchParams(query)};
}

async function route() {
  const main = document.getElementById("main");
  if (stopCurrent) { stopCurrent(); stopCurrent = null; }
  if (isGoogleAnswer(location.hash)) { await googleAnswered(); return; }
  const {path, query} = parseHash();
  if (!signedIn() && path !== "#/signin") { location.hash = "#/signin"; return; }
  renderHeader();
  const match = VIEWS.map(([re, load, name]) => ({m: path.match(re), load, name})).find((v) => v.m);
  if (!match) { main.replaceChildren(failure(new Error("No such page.")), link("#/", "Back to datasets")); return; }
  const params = match.m.slice(1).map(decodeURIComponent);
  main.replaceChildren(h("p", {class: "loading", role: "status"}, "Loading…"));
  try {
    const view = await match.load();
    const render = match.name ? view[match.name] : view.render;
    stopCurrent = (await render(main, {params, query})) || null;
  } catch (error) {
    main.replaceChildren(failure(error));
  }
  main.focus({preventScroll: true});
}

function renderHeader() {
  const session = signedIn();
  document.getElementById("nav").replaceChildren(...(session ? [
    link("#/", "Datasets"), link("#/training", "Training"), link("#/jobs", "Jobs"), link("#/models", "Models"), link("#/keys", "API keys")] : []));
  document.getElementById("who").replaceChildren(...(session ? [
    h("span", {class: "email"}, session.email),
    h("button", {type: "button", onclick: () => { signOut(); location.hash = "#/signin"; }}, "Sign out")] : []));
}

async function googleAnswered() {
  try {
    await finishGoogleSignIn(location.hash);
    await admitted();
    location.hash = "#/";
  } catch (error) {
    signInProblem = error.message;
    location.hash = "#/signin";
  }
}

// Signed in, but is this person admitted? The API says why not (an e-mail not verified, the sign-up policy):
// shown here, on the sign-in screen, signed out again.
async function admitted() {
  try {
    await api("/api-keys");
  } catch (error) {
    if (error.status !== 403) return;  // anything else is for the view that follows to show
    signOut();
    throw error;
  }
}

function renderSignIn(main) {
  const status = h("p", {role: "alert", class: "form-error"}, signInProblem);
  signInProblem = "";
  const form = h("form", {class: "signin", onsubmit: async (event) => {
    event.preventDefault();
    status.textContent = "";
    try {
      await signIn(form.email.value, form.password.value);
      await admitted();
      location.hash = "#/";
    } catch (error) { status.textContent = error.message; }
  }},
  h("h1", {}, "Sign in"),
  h("label", {}, "E-mail", h("input", {name: "email", type: "email", autocomplete: "username", required: true})),
  h("label", {}, "Password", h("input", {name: "password", type: "password", autocomplete: "current-password",
                                          required: true})),
  h("button", {type: "submit"}, "Sign in"), status);
  main.replaceChildren(form, ...(googleSignIn() ? [googleChoice()] : []));
  form.email.focus();
}

// Google's own page in production; locally the Auth emulator stands in for Google, so the person names the
// Google account it should pretend to be.
function googleChoice() {
  const button = h("button", {type: "button", class: "google"}, "Sign in with Google");
  if (!googleSignIn().emulator) {
    button.onclick = () => startGoogleSignIn();
    return h("div", {class: "signin-google"}, h("p", {}, "or"), button);
  }
  const emulated = h("form", {class: "signin", hidden: true, onsubmit: (event) => {
    event.preventDefault();
    startGoogleSignIn(emulated.google_email.value);
  }},
  h("p", {class: "hint"}, "The Auth emulator stands in for Google here: any address signs in as that Google account."),
  h("label", {}, "Google account", h("input", {name: "google_email", type: "email", required: true})),
  h("button", {type: "submit"}, "Continue with Google"));
  button.onclick = () => { emulated.hidden = false; button.hidden = true; emulated.google_email.focus(); };
  return h("div", {class: "signin-google"}, h("p", {}, "or"), button, emulated);
}

window.addEventListener("hashchange", route);
loadConfig().then(route, (error) => document.getElementById("main").replaceChildren(failure(error)));
