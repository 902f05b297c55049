// Calls to the billing API with the signed-in person's token. Bodies are parsed with Exact.parseJson, so money keeps
// the digits the API wrote. A failure becomes an ApiError carrying the problem+json the API answered.
"use strict";

class ApiError extends Error {
  constructor(status, problem) {
    const title = (problem && problem.title) || `HTTP ${status}`;
    const detail = problem && problem.detail ? ` — ${problem.detail}` : "";
    super(`${status} ${title}${detail}`);
    this.status = status;
    this.problem = problem || {};
  }
}

const Api = (() => {
  const TOKEN_KEY = "billing.console.token";
  let onUnauthorized = () => {};

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function signIn(raw) {
    const claims = decode(raw);
    if (!claims) throw new Error("That is not a JWT (three base64url parts separated by dots).");
    if (claims.exp && claims.exp * 1000 <= Date.now()) throw new Error("That token has expired: mint a new one.");
    sessionStorage.setItem(TOKEN_KEY, raw);
    return claims;
  }

  function signOut() { sessionStorage.removeItem(TOKEN_KEY); }

  /** The token's claims, read without checking the signature (the API checks it on every call). */
  function decode(raw) {
    const parts = String(raw || "").trim().split(".");
    if (parts.length !== 3) return null;
    try {
      const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "="));
      return JSON.parse(json);
    } catch { return null; }
  }

  function claims() { return token() ? decode(token()) : null; }

  /** One call; body is JSON text (built by the caller so that decimals go out exactly as typed). */
  async function call(method, path, bodyText) {
    const headers = { Accept: "application/json, application/problem+json" };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    if (bodyText !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: bodyText });
    } catch (e) {
      throw new ApiError(0, { title: "The gateway did not answer", detail: String(e.message || e) });
    }
    const text = await response.text();
    let body = null;
    if (text) {
      try { body = Exact.parseJson(text); } catch { body = { title: response.statusText, detail: text.slice(0, 300) }; }
    }
    if (response.status === 401) {
      signOut();
      onUnauthorized(new ApiError(401, body));
      throw new ApiError(401, body);
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  return {
    signIn, signOut, claims, call,
    get: (path) => call("GET", path),
    post: (path, bodyText) => call("POST", path, bodyText),
    put: (path, bodyText) => call("PUT", path, bodyText),
    set onUnauthorized(handler) { onUnauthorized = handler; },
  };
})();
