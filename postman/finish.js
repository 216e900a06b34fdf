// Turns the converter's output into the collection BMS ships (scripts/postman): the sign-in
// script above runs before every request, and the variables it reads are declared with the
// demo's values. Usage: node finish.js <converted.json> <sign-in.js> <out.json>
const fs = require('fs');
const [converted, signIn, out] = process.argv.slice(2);
const collection = JSON.parse(fs.readFileSync(converted, 'utf8'));
collection.info.name = 'BMS API';
collection.event = [
  {
    listen: 'prerequest',
    script: { type: 'text/javascript', exec: fs.readFileSync(signIn, 'utf8').split('\n') },
  },
];
const defaults = {
  baseUrl: 'http://localhost:8080',
  email: 'admin@bms.local',
  password: 'demo-admin-password',
  bearerToken: '',
  bearerTokenExpiresAt: '0',
};
const variables = (collection.variable || []).filter((v) => !(v.key in defaults));
for (const [key, value] of Object.entries(defaults)) variables.push({ key, value, type: 'string' });
collection.variable = variables;
collection.auth = { type: 'bearer', bearer: [{ key: 'token', value: '{{bearerToken}}', type: 'string' }] };
fs.writeFileSync(out, JSON.stringify(collection, null, 2) + '\n');
