// People: a dataset's members (owners add, change and remove them) and the signed-in person's API keys.
import {api, signedIn} from "./api.js";
import {tabs} from "./datasets.js";
import {empty, h, show, table} from "./dom.js";

const ROLES = ["viewer", "editor", "owner"];
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");

export async function members(main, {params: [dataset]}) {
  const path = `/datasets/${encodeURIComponent(dataset)}/members`;
  const status = h("p", {role: "status"});
  const body = h("div");
  const act = async (work, done) => {
    try {
      await work();
      status.textContent = typeof done === "function" ? done() : done;
      await refresh();
    } catch (error) { status.textContent = error.message; }
  };
  const refresh = async () => {
    const {members: list, invitations = []} = await api(path);
    const owner = list.some((m) => m.uid === signedIn().uid && m.role === "owner");
    const user = (m) => encodeURIComponent(m.uid);
    const roleControl = (m) => !owner ? m.role : h("select", {"aria-label": `Role of ${m.email || m.uid}`,
      onchange: (event) => act(() => api(`${path}/${user(m)}`, {method: "PUT", body: {role: event.target.value}}),
                               `${m.email || m.uid} is now ${event.target.value}.`)},
      ROLES.map((r) => h("option", {selected: r === m.role ? "" : null}, r)));
    const remove = (m) => h("button", {type: "button", "aria-label": `Remove ${m.email || m.uid}`,
      onclick: () => act(() => api(`${path}/${user(m)}`, {method: "DELETE"}), `${m.email || m.uid} removed.`)}, "Remove");
    const rows = list.map((m) => [m.email || "–", roleControl(m), when(m.added_at), owner ? remove(m) : ""]);
    const withdraw = (i) => h("button", {type: "button", "aria-label": `Withdraw the invitation of ${i.email}`,
      onclick: () => act(() => api(`${path}/${encodeURIComponent(i.email)}`, {method: "DELETE"}),
                         `The invitation of ${i.email} is withdrawn.`)}, "Withdraw");
    const invited = invitations.map((i) => [i.email, i.role, when(i.invited_at), owner ? withdraw(i) : ""]);
    body.replaceChildren(list.length ? table(["person", "role", "added", ""], rows, "Members") :
        empty("No members: only administrators see this dataset."),
      ...(invited.length ? [table(["invited address", "role", "invited", ""], invited,
                                  "Invitations: the role is theirs once they sign in with that verified address")] : []),
      owner ? h("form", {class: "controls", onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(event.target);
        const address = data.get("user").trim().toLowerCase();
        let pending = false;
        act(async () => {
          const answer = await api(`${path}/${encodeURIComponent(address)}`, {method: "PUT", body: {role: data.get("role")}});
          pending = answer.invitations.some((i) => i.email === address);
        }, () => pending ? `${address} is invited as ${data.get("role")}: the role is theirs once they sign in ` +
          "with that address, verified." : `${address} added as ${data.get("role")}.`);
      }}, h("label", {}, "E-mail ", h("input", {name: "user", type: "email", required: true})),
        h("label", {}, "Role ", h("select", {name: "role"}, ROLES.map((r) => h("option", {}, r)))),
        h("button", {type: "submit"}, "Add")) :
        h("p", {class: "muted"}, "Owners add, change and remove members. An address no account has verified yet is invited: the role " +
          "is theirs once they sign in with it."));
  };
  show(main, h("h1", {}, `${dataset}: members`), tabs(dataset, "members"), status, body);
  await refresh();
}

export async function keys(main) {
  const status = h("p", {role: "status"});
  const shown = h("div");
  const body = h("div");
  const refresh = async () => {
    const {keys: list} = await api("/api-keys");
    body.replaceChildren(list.length ? table(["name", "starts with", "made", "expires", "last used", ""], list.map((k) => [
      k.name, h("code", {}, k.prefix), when(k.created_at), when(k.expires_at), when(k.last_used_at),
      h("button", {type: "button", "aria-label": `Revoke ${k.name}`, onclick: async () => {
        try { await api(`/api-keys/${encodeURIComponent(k.id)}`, {method: "DELETE"}); shown.replaceChildren();
              status.textContent = `${k.name} revoked: it stops working now.`; await refresh(); }
        catch (error) { status.textContent = error.message; }
      }}, "Revoke")]), "Your API keys") : empty("No API key yet. A key lets a program (the yolodrop command line, " +
        "a script) act as you."));
  };
  const form = h("form", {class: "controls", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const made = await api("/api-keys", {method: "POST", body: {name: new FormData(event.target).get("name")}});
      shown.replaceChildren(h("div", {class: "panel", role: "alert"},
        h("p", {}, `Your new key ${made.name}, shown this once: copy it now.`),
        h("code", {"data-testid": "new-key", class: "key"}, made.key),
        h("p", {class: "muted"}, "yolodrop login --api-url <this API> --api-key <the key>")));
      status.textContent = "";
      event.target.reset();
      await refresh();
    } catch (error) { status.textContent = error.message; }
  }}, h("label", {}, "Name ", h("input", {name: "name", required: true, maxlength: 100})),
    h("button", {type: "submit"}, "Make a key"));
  show(main, h("h1", {}, "API keys"), form, shown, status, body);
  await refresh();
}
