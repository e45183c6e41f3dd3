// The login form: POST /api/session; the session cookie is HttpOnly, the CSRF token kept in memory.
import { useState, type FormEvent } from 'react';
import { ApiError, login, type SessionUser } from '../lib/api.js';

export function LoginPage({ onLoggedIn }: { onLoggedIn: (user: SessionUser) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await login(username, password);
      onLoggedIn(session.user);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      setError(
        err.code === 'login_failed'
          ? 'Wrong username or password.'
          : err.code === 'rate_limited'
            ? 'Too many attempts: wait a minute and try again.'
            : err.message,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="centered login">
      <h1>dialflow console</h1>
      <form aria-label="Log in" onSubmit={(e) => void submit(e)}>
        <label htmlFor="login-username">Username</label>
        <input
          id="login-username"
          name="username"
          autoComplete="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <label htmlFor="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          Log in
        </button>
      </form>
    </main>
  );
}
