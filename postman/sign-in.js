// Collection-level pre-request script of the generated Postman collection (scripts/postman).
// Signs in with the collection's `email` and `password` variables the first time a request
// needs a token, and again shortly before the access token expires; requests send it as
// `Authorization: Bearer {{bearerToken}}`. Set `email` and `password` to the demo admin (as
// `scripts/up` prints) or to any account of yours.
const signingIn = pm.request.url.getPath().startsWith('/api/auth/');
const token = pm.collectionVariables.get('bearerToken');
const expiresAt = Number(pm.collectionVariables.get('bearerTokenExpiresAt') || 0);
if (!signingIn && (!token || Date.now() >= expiresAt)) {
  pm.sendRequest(
    {
      url: pm.collectionVariables.get('baseUrl') + '/api/auth/login',
      method: 'POST',
      header: { 'Content-Type': 'application/json' },
      body: {
        mode: 'raw',
        raw: JSON.stringify({
          email: pm.collectionVariables.get('email'),
          password: pm.collectionVariables.get('password'),
          device_name: 'Postman',
        }),
      },
    },
    (error, response) => {
      if (error || response.code !== 200) {
        console.error('BMS sign-in failed', error || response.json());
        return;
      }
      const pair = response.json();
      pm.collectionVariables.set('bearerToken', pair.access_token);
      // Renew 30 s early, so a request never leaves with a token about to lapse.
      pm.collectionVariables.set('bearerTokenExpiresAt', Date.now() + (pair.expires_in - 30) * 1000);
    },
  );
}
