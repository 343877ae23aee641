// A real OpenID Connect server for tests: panva's oidc-provider (OpenID Certified), configured
// from ONE JSON file (argv[2]) written by auth_oidc.testing.OidcProviderServer.
//
// Config keys: issuer, port, clients, users, jwks (private), id_token_alg, access_token_format
// ("opaque" | "jwt"), access_token_alg, resource, resource_scope, resource_audience,
// access_token_claims, password_grant, ttl, provider (deep-merged into the oidc-provider
// configuration). Never logs secrets: only "ready <issuer>" and oidc-provider's own notices.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { issuer, port } = config;
const jwtMode = config.access_token_format === 'jwt';
const firstKeyAlg = config.jwks.keys[0]?.alg;
const idTokenAlg = config.id_token_alg ?? firstKeyAlg ?? 'RS256';
const accessTokenAlg = config.access_token_alg ?? idTokenAlg;
const resource = config.resource ?? 'urn:authcore:test-api';
const resourceScope = config.resource_scope ?? 'openid profile email groups';
const resourceAudience = config.resource_audience ?? resource;

// Which scope releases which claim (also gates the claims copied into access tokens).
const CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  email: ['email', 'email_verified'],
  groups: ['groups'],
};
const accessTokenClaims = config.access_token_claims ?? ['preferred_username', 'name', 'email', 'groups'];

// Every asymmetric JWS algorithm node 20 signs with, so any generated key can be used.
const SIGNING_ALGS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA',
];

// ---- users ----

const usersBySub = new Map();
const usersByLogin = new Map();
for (const [login, user] of Object.entries(config.users ?? {})) {
  const entry = { login, password: user.password, claims: { sub: login, ...user.claims } };
  usersBySub.set(entry.claims.sub, entry);
  usersByLogin.set(login, entry);
}

const digest = (value) => createHash('sha256').update(String(value ?? ''), 'utf8').digest();

// Compares digests in constant time, and still hashes when the login is unknown.
function checkPassword(login, password) {
  const user = usersByLogin.get(String(login ?? ''));
  const expected = digest(user ? user.password : '\u0000no-such-user');
  const ok = timingSafeEqual(expected, digest(password));
  return ok && user ? user : undefined;
}

function account(user) {
  return {
    accountId: user.claims.sub,
    // oidc-provider filters by scope and the claims parameter; return everything known.
    async claims() { return { ...user.claims }; },
  };
}

async function findAccount(_ctx, id) {
  const user = usersBySub.get(id) ?? usersByLogin.get(id);
  return user ? account(user) : undefined;
}

// ---- clients ----

// "password" exists only with password_grant: drop it otherwise so one client list serves both
// (oidc-provider refuses client metadata naming an unregistered grant type).
const clients = (config.clients ?? []).map((client) => {
  const out = { ...client };
  if (config.id_token_alg && !out.id_token_signed_response_alg) {
    out.id_token_signed_response_alg = config.id_token_alg;
  }
  if (!config.password_grant && Array.isArray(out.grant_types)) {
    out.grant_types = out.grant_types.filter((grant) => grant !== 'password');
  }
  return out;
});

// ---- resource server (JWT access tokens) ----

async function getResourceServerInfo(_ctx, indicator) {
  if (indicator !== resource) throw new errors.InvalidTarget();
  return {
    scope: resourceScope,
    audience: resourceAudience,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: accessTokenAlg } },
  };
}

// Claims copied into access tokens (the JWT, or the introspection answer of an opaque token),
// each only when the token's scope releases it, as the userinfo endpoint would.
async function extraTokenClaims(_ctx, token) {
  const user = token.accountId ? usersBySub.get(token.accountId) : undefined;
  if (!user) return undefined;
  const scopes = new Set(String(token.scope ?? '').split(' '));
  const extra = {};
  for (const [scope, names] of Object.entries(CLAIMS)) {
    if (!scopes.has(scope)) continue;
    for (const name of names) {
      if (name !== 'sub' && accessTokenClaims.includes(name) && user.claims[name] !== undefined) {
        extra[name] = user.claims[name];
      }
    }
  }
  return extra;
}

// ---- consent: first-party, granted silently ----

async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  // An expired or unknown grant id falls back to a new grant.
  const grant = (grantId && await oidc.provider.Grant.find(grantId))
    || new oidc.provider.Grant({ accountId: oidc.account.accountId, clientId: oidc.client.clientId });
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  const claims = [...oidc.requestParamClaims];
  if (claims.length) grant.addOIDCClaims(claims);
  for (const [indicator, server] of Object.entries(oidc.resourceServers)) {
    const scopes = [...oidc.requestParamScopes].filter((scope) => server.scopes.has(scope));
    if (scopes.length) grant.addResourceScope(indicator, scopes.join(' '));
  }
  await grant.save();
  return grant;
}

// ---- configuration ----

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function deepMerge(target, source) {
  for (const [key, value] of Object.entries(source ?? {})) {
    target[key] = isPlainObject(value) && isPlainObject(target[key]) ? deepMerge({ ...target[key] }, value) : value;
  }
  return target;
}

const configuration = deepMerge({
  clients,
  findAccount,
  jwks: config.jwks,
  claims: CLAIMS,
  // Test-only cookie signing keys: fixed, never secret.
  cookies: { keys: ['authcore-test-only-cookie-key-1', 'authcore-test-only-cookie-key-2'] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  loadExistingGrant,
  extraTokenClaims,
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  enabledJWA: {
    idTokenSigningAlgValues: SIGNING_ALGS,
    userinfoSigningAlgValues: SIGNING_ALGS,
    introspectionSigningAlgValues: SIGNING_ALGS,
  },
  // Merged over oidc-provider's defaults (some of which are functions): only the given ones change.
  ttl: config.ttl ?? {},
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    clientCredentials: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: jwtMode
      ? {
        enabled: true,
        defaultResource: async () => resource,
        getResourceServerInfo,
        // Use the resource even when the scope has openid: every access token is then a JWT for
        // the API (and, being audience-restricted, is refused by the userinfo endpoint).
        useGrantedResource: async () => true,
      }
      : { enabled: false },
  },
}, config.provider);

const provider = new Provider(issuer, configuration);

// ---- password grant (ROPC), optional ----

function oidcScopeOf(requested) {
  const known = new Set(['openid', 'offline_access', ...Object.keys(CLAIMS)]);
  return requested.filter((scope) => known.has(scope)).join(' ');
}

async function passwordGrant(ctx) {
  const { params, client } = ctx.oidc;
  const user = checkPassword(params.username, params.password);
  if (!user) throw new errors.InvalidGrant('invalid username or password');

  const requested = String(params.scope ?? 'openid').split(' ').filter(Boolean);
  const oidcScope = oidcScopeOf(requested);
  const accountId = user.claims.sub;
  const acct = account(user);
  ctx.oidc.entity('Account', acct);

  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  grant.addOIDCScope(oidcScope);
  let resourceServer;
  if (jwtMode) {
    const indicator = params.resource ?? resource;
    resourceServer = new provider.ResourceServer(indicator, await getResourceServerInfo(ctx, indicator));
    const rsScope = requested.filter((scope) => resourceServer.scopes.has(scope)).join(' ');
    if (rsScope) grant.addResourceScope(indicator, rsScope);
  }
  const grantId = await grant.save();
  ctx.oidc.entity('Grant', grant);

  const authTime = Math.floor(Date.now() / 1000);
  const at = new provider.AccessToken({ accountId, client, grantId, gty: 'password' });
  if (resourceServer) {
    at.resourceServer = resourceServer;
    at.scope = grant.getResourceScopeFiltered(
      resourceServer.identifier(),
      requested.filter((scope) => resourceServer.scopes.has(scope)),
    );
  } else {
    at.scope = grant.getOIDCScopeFiltered(new Set(oidcScope.split(' ')));
  }
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let refreshToken;
  if (client.grantTypeAllowed('refresh_token')) {
    const rt = new provider.RefreshToken({
      accountId,
      authTime,
      client,
      grantId,
      gty: 'password',
      resource: resourceServer ? resourceServer.identifier() : undefined,
      rotations: 0,
      scope: oidcScope,
    });
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }

  let idToken;
  if (requested.includes('openid')) {
    const token = new provider.IdToken({ ...await acct.claims(), auth_time: authTime }, { ctx });
    // As for the code grant: scope claims go to the ID token only when the access token
    // cannot be used at the userinfo endpoint (conformIdTokenClaims, on by default).
    token.scope = at.aud ? grant.getOIDCScopeFiltered(new Set(oidcScope.split(' '))) : 'openid';
    idToken = await token.issue({ use: 'idtoken' });
  }

  ctx.body = {
    access_token: accessToken,
    expires_in: at.expiration,
    token_type: at.tokenType,
    scope: at.scope || undefined,
    ...(idToken ? { id_token: idToken } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}

if (config.password_grant) {
  provider.registerGrantType('password', passwordGrant, ['username', 'password', 'scope', 'resource']);
}

// ---- login interaction: our own page ----

function escapeHtml(value) {
  return String(value).replace(/[&<>"'`=]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function loginPage(uid, clientId, error) {
  const action = `/interaction/${encodeURIComponent(uid)}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in to ${escapeHtml(clientId)}</h1>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
<label>Login <input name="login" autofocus></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`;
}

async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new errors.InvalidRequest('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)$/;

provider.use(async (ctx, next) => {
  const match = INTERACTION.exec(ctx.path);
  if (!match || !['GET', 'POST'].includes(ctx.method)) return next();
  ctx.set('cache-control', 'no-store');
  try {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== match[1] || details.prompt.name !== 'login') {
      throw new errors.InvalidRequest('unexpected interaction');
    }
    const clientId = details.params.client_id;
    if (ctx.method === 'GET') {
      ctx.type = 'html';
      ctx.body = loginPage(details.uid, clientId);
      return undefined;
    }
    const form = await readForm(ctx.req);
    const user = checkPassword(form.get('login'), form.get('password'));
    if (!user) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(details.uid, clientId, 'Invalid login or password');
      return undefined;
    }
    // Writes the 303 to the resume endpoint itself; koa then leaves the response alone.
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: user.claims.sub } }, {
      mergeWithLastSubmission: false,
    });
    return undefined;
  } catch (err) {
    if (!(err instanceof errors.OIDCProviderError)) throw err;
    ctx.status = err.status;
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>${escapeHtml(err.message)}</h1>`
      + `<p>${escapeHtml(err.error_description ?? '')}</p></body></html>`;
    return undefined;
  }
});

// ---- run ----

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
