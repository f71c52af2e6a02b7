// '@edx/frontend-platform/auth' of the harness: an axios-like client ({data} on 2xx, a rejection otherwise) that
// sends the session cookie, as the MFEs' authenticated client sends the LMS's JWT cookies.
export function getAuthenticatedHttpClient() {
  return {
    get(url) {
      return fetch(url, { credentials: 'include', headers: { Accept: 'application/json' } }).then((response) => {
        if (!response.ok) { throw new Error(`HTTP ${response.status}`); }
        return response.json().then((data) => ({ data, status: response.status }));
      });
    },
  };
}
