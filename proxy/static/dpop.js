// tokengate DPoP helper (RFC 9449) for browsers. No dependencies.
//
// Makes one non-extractable ECDSA P-256 key per origin with WebCrypto, keeps
// the CryptoKey objects in IndexedDB (the private key can sign but never be
// exported, not even by this script), and wraps fetch so every request to the
// gateway carries a `DPoP` proof (ES256; htm, htu, iat, jti, ath when an
// Authorization token is sent, and the server nonce). When the gateway answers
// `use_dpop_nonce`, the request is retried once with the nonce it supplied.
//
// Usage (as an ES module, at whatever path the gateway serves it):
//   import { install } from "/path/to/dpop.js";
//   await install();                 // wraps window.fetch for this origin
// or, without touching the global:
//   const dpopFetch = createDPoPFetch();
//   await dpopFetch("/api/orders", { method: "POST", body });

const DB_NAME = "tokengate-dpop";
const STORE = "keys";
const CURRENT = "current";
const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };
const NORMALISED_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
const encoder = new TextEncoder();

function b64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function b64urlJson(value) {
  return b64url(encoder.encode(JSON.stringify(value)));
}

async function sha256(text) {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

/** A new key pair whose private half can never be exported. */
export async function generateKeyPair() {
  return crypto.subtle.generateKey(ALGORITHM, false, ["sign", "verify"]);
}

/** The public JWK members a proof carries (kty, crv, x, y: nothing private). */
export async function publicJwk(publicKey) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", publicKey);
  return { kty, crv, x, y };
}

/** RFC 7638 thumbprint of the key: what the gateway binds a session to (cnf.jkt). */
export async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await publicJwk(publicKey);
  return b64url(await sha256(JSON.stringify({ crv, kty, x, y })));
}

/** The method as fetch sends it (standard methods uppercased, others as given). */
export function normaliseMethod(method) {
  const upper = String(method || "GET").toUpperCase();
  return NORMALISED_METHODS.includes(upper) ? upper : String(method);
}

/** The htu of a URL: absolute, without query and fragment. */
export function htuOf(url, base) {
  const parsed = new URL(url, base);
  parsed.search = "";
  parsed.hash = "";
  return parsed.href;
}

/** One DPoP proof JWT for a request. `now` is in milliseconds (defaults to Date.now()). */
export async function createProof(keyPair, { method, url, accessToken, nonce, now, base } = {}) {
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: await publicJwk(keyPair.publicKey) };
  const payload = {
    jti: b64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: normaliseMethod(method),
    htu: htuOf(url, base),
    iat: Math.floor((now ?? Date.now()) / 1000),
  };
  if (accessToken) payload.ath = b64url(await sha256(accessToken));
  if (nonce) payload.nonce = nonce;
  const signingInput = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  // WebCrypto's ECDSA signature is already r||s (IEEE P1363), the JWS format.
  const signature = await crypto.subtle.sign(SIGN, keyPair.privateKey, encoder.encode(signingInput));
  return `${signingInput}.${b64url(signature)}`;
}

function idbRequest(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Key storage in IndexedDB; the first key saved wins, so tabs agree on one key. */
export function idbKeyStore(name = DB_NAME) {
  async function withStore(mode, action) {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    const db = await idbRequest(open);
    try {
      return await idbRequest(action(db.transaction(STORE, mode).objectStore(STORE)));
    } finally {
      db.close();
    }
  }
  return {
    async load() {
      return (await withStore("readonly", (store) => store.get(CURRENT))) ?? null;
    },
    async save(keyPair) {
      try {
        await withStore("readwrite", (store) => store.add(keyPair, CURRENT));
        return keyPair;
      } catch (error) {
        if (error && error.name === "ConstraintError") return this.load(); // another tab won
        throw error;
      }
    },
  };
}

/** Key storage in memory (tests, or pages that must not persist a key). */
export function memoryKeyStore() {
  let current = null;
  return {
    async load() {
      return current;
    },
    async save(keyPair) {
      current = current ?? keyPair;
      return current;
    },
  };
}

function accessTokenOf(request) {
  const match = /^(?:Bearer|DPoP)\s+(\S+)\s*$/i.exec(request.headers.get("Authorization") || "");
  return match ? match[1] : undefined;
}

function wantsNonce(response) {
  if (!response.headers.get("DPoP-Nonce") || (response.status !== 401 && response.status !== 400)) {
    return false;
  }
  return /error\s*=\s*"?use_dpop_nonce/.test(response.headers.get("WWW-Authenticate") || "");
}

/**
 * A fetch that adds DPoP proofs to requests for `origins` (default: this page's).
 * Options: fetch (the underlying fetch), store (key storage), origins, base (URL base).
 */
export function createDPoPFetch(options = {}) {
  const baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const store = options.store ?? idbKeyStore();
  const base = options.base ?? globalThis.location?.href;
  const origins = new Set(options.origins ?? [new URL(base).origin]);
  const nonces = new Map();
  let keyPair = null;

  function key() {
    keyPair ??= (async () => (await store.load()) ?? store.save(await generateKeyPair()))();
    keyPair.catch(() => {
      keyPair = null; // a failed load or save is retried on the next request
    });
    return keyPair;
  }

  async function send(request) {
    const url = new URL(request.url);
    const proof = await createProof(await key(), {
      method: request.method,
      url: request.url,
      accessToken: accessTokenOf(request),
      nonce: nonces.get(url.origin),
    });
    const headers = new Headers(request.headers);
    headers.set("DPoP", proof);
    const response = await baseFetch(new Request(request, { headers }));
    const nonce = response.headers.get("DPoP-Nonce");
    if (nonce) nonces.set(url.origin, nonce);
    return response;
  }

  return async function dpopFetch(input, init) {
    const request = new Request(input instanceof Request ? input : new URL(input, base), init);
    if (!origins.has(new URL(request.url).origin)) return baseFetch(request);
    const retry = request.clone(); // the body can be read once: keep a copy for the retry
    const response = await send(request);
    return wantsNonce(response) ? send(retry) : response;
  };
}

/** Replace globalThis.fetch with a DPoP-adding fetch; returns the wrapped function. */
export async function install(options = {}) {
  const original = globalThis.fetch.bind(globalThis);
  const wrapped = createDPoPFetch({ fetch: original, ...options });
  globalThis.fetch = wrapped;
  return wrapped;
}
