// The console's shell: the session probe (login form on 401), the navigation, and the pages, each
// loaded when first shown so the login page stays small.
import { Suspense, lazy, useCallback, useEffect, useState } from 'react';
import { ApiError, fetchSession, logout, setUnauthorizedHandler, type SessionUser } from './lib/api.js';
import { Link, navigate, useRoute } from './lib/router.js';
import { SessionContext } from './lib/session.js';
import { LoginPage } from './pages/Login.js';

const FlowsPage = lazy(() => import('./pages/flows/index.js'));
const CampaignsPage = lazy(() => import('./pages/campaigns/index.js'));
const CallsPage = lazy(() => import('./pages/calls/index.js'));

type SessionState =
  | { kind: 'loading' }
  | { kind: 'anonymous' }
  | { kind: 'error'; message: string }
  | { kind: 'user'; user: SessionUser };

const under = (path: string, prefix: string): boolean => path === prefix || path.startsWith(`${prefix}/`);

function Page({ path }: { path: string }) {
  if (under(path, '/flows')) return <FlowsPage />;
  if (under(path, '/campaigns')) return <CampaignsPage />;
  if (under(path, '/calls')) return <CallsPage />;
  return (
    <section aria-labelledby="not-found-title">
      <h1 id="not-found-title">Page not found</h1>
      <p>
        There is no page at <code>{path}</code>. <Link to="/flows">Open the flow editor</Link>.
      </p>
    </section>
  );
}

export function App() {
  const path = useRoute();
  const [session, setSession] = useState<SessionState>({ kind: 'loading' });

  useEffect(() => {
    let cancelled = false;
    setUnauthorizedHandler(() => setSession({ kind: 'anonymous' }));
    fetchSession().then(
      (s) => !cancelled && setSession(s ? { kind: 'user', user: s.user } : { kind: 'anonymous' }),
      (err: unknown) =>
        !cancelled &&
        setSession({ kind: 'error', message: err instanceof ApiError ? err.message : 'the API did not answer' }),
    );
    return () => {
      cancelled = true;
      setUnauthorizedHandler(undefined);
    };
  }, []);

  useEffect(() => {
    if (session.kind === 'user' && path === '/') navigate('/flows', { replace: true });
  }, [session.kind, path]);

  const onLogout = useCallback(async () => {
    await logout();
    setSession({ kind: 'anonymous' });
  }, []);

  if (session.kind === 'loading')
    return (
      <main id="main" className="centered">
        <p role="status">Loading…</p>
      </main>
    );
  if (session.kind === 'error')
    return (
      <main id="main" className="centered">
        <h1>dialflow console</h1>
        <p role="alert">The console could not reach the API: {session.message}</p>
      </main>
    );
  if (session.kind === 'anonymous') return <LoginPage onLoggedIn={(user) => setSession({ kind: 'user', user })} />;

  return (
    <SessionContext.Provider value={session.user}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="app-header">
        <span className="brand">dialflow</span>
        <nav aria-label="Main">
          <ul>
            <li>
              <Link to="/flows">Flows</Link>
            </li>
            <li>
              <Link to="/campaigns">Campaigns</Link>
            </li>
            <li>
              <Link to="/calls">Calls</Link>
            </li>
          </ul>
        </nav>
        <span className="user">
          {session.user.name} ({session.user.role})
        </span>
        <button type="button" onClick={() => void onLogout()}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p role="status">Loading…</p>}>
          <Page path={path} />
        </Suspense>
      </main>
    </SessionContext.Provider>
  );
}
