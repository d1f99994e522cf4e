// Talking to the gateway: the session's CSRF token on every change, errors as ApiError, and a
// 'signed-out' event on the window whenever the session is gone.

let csrfToken = '';

/** An error answer from the gateway. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Remembers the CSRF token of the current session. */
export function setCsrf(token) {
  csrfToken = token || '';
}

async function send(url, method, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { response, data };
}

function failure(response, data) {
  const error = data && data.error;
  return new ApiError(response.status, (error && error.message) || response.statusText, error && error.code);
}

/** Calls `/ui/api{path}`; answers the JSON body, throws ApiError for anything but 2xx. */
export async function api(method, path, body) {
  const { response, data } = await send('/ui/api' + path, method, body);
  if (response.status === 401) window.dispatchEvent(new Event('signed-out'));
  if (!response.ok) throw failure(response, data);
  return data;
}

/** Like api(), but answers error bodies too, as { status, data }. */
export async function apiRaw(method, path, body) {
  const { response, data } = await send('/ui/api' + path, method, body);
  if (response.status === 401) window.dispatchEvent(new Event('signed-out'));
  return { status: response.status, data };
}

/** Signs in with the admin token; the session cookie is set by the answer. */
export async function login(token) {
  const { response, data } = await send('/ui/login', 'POST', { token });
  if (!response.ok) throw failure(response, data);
  setCsrf(data.csrf_token);
  return data;
}

/** The current session, if any: sets its CSRF token and answers true, or answers false. */
export async function resume() {
  const { response, data } = await send('/ui/api/session', 'GET');
  if (!response.ok) return false;
  setCsrf(data.csrf_token);
  return true;
}

/** Closes the session. */
export async function logout() {
  await api('POST', '/logout');
  setCsrf('');
}
