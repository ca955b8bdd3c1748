// tokengate step-up page: passes a second factor through the gateway's
// /.tokengate/mfa/ JSON endpoints, then returns to the page that asked for it.
//
// Loaded by /.tokengate/mfa/step-up (strict CSP: this file is the only script).
// The gateway validated `return_to` already; it is checked again here, and
// only a same-origin path ("/x", never "//host" or "/\host") is ever followed.

import { createDPoPFetch } from "/.tokengate/dpop.js";

// A DPoP-bound session must prove its key on the MFA endpoints too; for an
// unbound one the proof is ignored. The key is the origin's, kept by dpop.js.
const dpopFetch = createDPoPFetch();
const main = document.getElementById("step-up");
const status = document.getElementById("status");

/** A same-origin path to go back to; "/" for anything else. */
export function safeReturnTo(value) {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//")) return "/";
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return "/";
  const target = new URL(value, window.location.origin);
  return target.origin === window.location.origin ? target.pathname + target.search + target.hash : "/";
}

async function post(path, body) {
  return dpopFetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

function done() {
  window.location.assign(safeReturnTo(main.dataset.returnTo));
}

function refused(response) {
  if (response.status === 429) return "Too many attempts. Try again later.";
  if (response.status === 401) return "That was not accepted. Try again.";
  return "Something went wrong (" + response.status + ").";
}

async function verifyCode(path, input) {
  status.textContent = "";
  const response = await post(path, { code: input.value.trim() });
  input.value = "";
  if (response.ok) return done();
  status.textContent = refused(response);
}

async function securityKey() {
  status.textContent = "";
  const base = "/.tokengate/mfa/webauthn/authenticate";
  const options = await post(base + "/options", {});
  if (!options.ok) {
    status.textContent = options.status === 409 ? "No security key is registered." : refused(options);
    return;
  }
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(await options.json());
  const credential = await navigator.credentials.get({ publicKey });
  const response = await post(base + "/verify", { credential: credential.toJSON() });
  if (response.ok) return done();
  status.textContent = refused(response);
}

document.getElementById("totp-form").addEventListener("submit", (event) => {
  event.preventDefault();
  verifyCode("/.tokengate/mfa/totp/verify", document.getElementById("totp-code"));
});
document.getElementById("recovery-form").addEventListener("submit", (event) => {
  event.preventDefault();
  verifyCode("/.tokengate/mfa/recovery/verify", document.getElementById("recovery-code"));
});
if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
  document.getElementById("webauthn-section").hidden = false;
  document.getElementById("webauthn-button").addEventListener("click", () => {
    securityKey().catch(() => { status.textContent = "The security key did not answer."; });
  });
}
