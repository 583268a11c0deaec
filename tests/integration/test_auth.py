"""Auth: login, lock-out, access tokens (forged ones too), refresh rotation
and replay, logout, /auth/me, and roles read from the database on every
request. Runs on both engines."""

import base64
import hashlib
import hmac
import json
import os
import re
import time
import unittest
import uuid

from harness import Server

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PASSWORD = "correct horse battery"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_jwt(key, claims, header=None, alg="HS256", sign=True):
    """A compact JWT signed with key (bytes) the way the server signs, or
    with the header/algorithm a forger chooses."""
    header = header if header is not None else {"alg": alg, "typ": "JWT"}
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = ("%s.%s" % (h, p)).encode()
    if not sign:
        return "%s.%s." % (h, p)
    digest = hashlib.sha512 if alg == "HS512" else hashlib.sha256
    sig = hmac.new(key, signing_input, digest).digest()
    return "%s.%s.%s" % (h, p, b64url(sig))


def jwt_payload(token):
    return json.loads(b64url_decode(token.split(".")[1]))


def bearer(token):
    return {"Authorization": "Bearer " + token}


class AuthBase(unittest.TestCase):
    """One server per class with an organization and a few users."""

    env = {}

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env=cls.env)
        try:
            cls.srv.start()
            cls.make_org("acme", "Acme Inc")
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    @classmethod
    def make_org(cls, slug, name):
        rc, out, err = cls.srv.cli("org", "create", "--name", name, "--slug", slug)
        if rc != 0:
            raise AssertionError("org create failed: %s%s" % (out, err))

    @classmethod
    def make_user(cls, email, role="agent", org="acme", password=PASSWORD):
        rc, out, err = cls.srv.cli("user", "create", "--email", email, "--password", password,
                                   "--org", org, "--role", role, "--full-name", "User " + email)
        if rc != 0:
            raise AssertionError("user create failed: %s%s" % (out, err))
        return email

    def login(self, email, password=PASSWORD, expect=200):
        r = self.srv.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
        self.assertEqual(r.status, expect, r.text)
        return r

    def tokens(self, email, password=PASSWORD):
        return self.login(email, password).json()

    def jwt_key(self):
        with open(os.path.join(self.srv.data_dir, "jwt_secret.key"), "rb") as f:
            return f.read().strip()

    def user_id(self, email):
        return self.srv.sql("SELECT id FROM users WHERE email = '%s'" % email).strip()

    def org_id(self, slug="acme"):
        return self.srv.sql("SELECT id FROM organizations WHERE slug = '%s'" % slug).strip()

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r.text)
        self.assertEqual(r.json()["error"]["code"], code, r.text)
        self.assertTrue(r.json()["error"]["message"])

    def assert_401(self, r, code):
        self.assert_error(r, 401, code)
        www = r.headers.get("WWW-Authenticate")
        self.assertIsNotNone(www, "401 without WWW-Authenticate")
        self.assertTrue(www.startswith('Bearer error="invalid_token"'), www)
        if code == "token_expired":
            self.assertIn('error_description="token expired"', www)

    def me(self, token):
        return self.srv.request("GET", "/api/v1/auth/me", headers=bearer(token))


class Login(AuthBase):

    def test_login_ok_token_shape(self):
        email = self.make_user("ok@example.com", "agent")
        r = self.login("OK@Example.com")  # emails are case-insensitive
        body = r.json()
        self.assertEqual(set(body), {"access_token", "refresh_token", "token_type", "expires_in"})
        self.assertEqual(body["token_type"], "bearer")
        self.assertEqual(body["expires_in"], 900)
        self.assertRegex(body["refresh_token"], r"^[A-Za-z0-9_-]{43}$")
        header = json.loads(b64url_decode(body["access_token"].split(".")[0]))
        self.assertEqual(header["alg"], "HS256")
        claims = jwt_payload(body["access_token"])
        self.assertEqual(claims["sub"], self.user_id(email))
        self.assertEqual(claims["org"], self.org_id())
        self.assertEqual(claims["role"], "agent")
        self.assertEqual(claims["iss"], "pytake")
        self.assertEqual(claims["exp"] - claims["iat"], 900)
        self.assertTrue(claims["jti"])
        self.assertLessEqual(abs(claims["iat"] - time.time()), 60)
        # The refresh token is stored hashed, never in clear.
        stored = self.srv.sql("SELECT token_hash FROM refresh_tokens").split()
        self.assertIn(hashlib.sha256(body["refresh_token"].encode()).hexdigest(), stored)
        self.assertNotIn(body["refresh_token"], self.srv.sql("SELECT * FROM refresh_tokens"))
        # last_login_at is stamped.
        last = self.srv.sql("SELECT last_login_at FROM users WHERE email = '%s'" % email).strip()
        self.assertTrue(last and int(last) > 0, last)

    def test_wrong_password_unknown_email_and_inactive_answer_alike(self):
        self.make_user("same@example.com", "viewer")
        self.make_user("gone@example.com", "viewer")
        self.srv.sql("UPDATE users SET is_active = %s WHERE email = 'gone@example.com'"
                     % ("false" if self.srv.engine == "postgresql" else "0"))
        answers = [
            self.login("same@example.com", "wrong password!", expect=401),
            self.login("nobody@example.com", "wrong password!", expect=401),
            self.login("gone@example.com", PASSWORD, expect=401),
        ]
        for r in answers:
            self.assert_error(r, 401, "invalid_credentials")
        self.assertEqual(answers[0].json(), answers[1].json())
        self.assertEqual(answers[0].json(), answers[2].json())

    def test_login_body_validation(self):
        cases = [
            ({"email": "a@example.com"}, 422),
            ({"password": "x" * 10}, 422),
            ({"email": 5, "password": "x" * 10}, 400),
            ({"email": "a@example.com", "password": ["x"]}, 400),
        ]
        for body, status in cases:
            with self.subTest(body=body):
                r = self.srv.request("POST", "/api/v1/auth/login", body)
                self.assertEqual(r.status, status, r.text)
        r = self.srv.request("POST", "/api/v1/auth/login", "{not json")
        self.assertEqual(r.status, 400, r.text)

    def test_lockout_after_five_failures(self):
        email = self.make_user("locked@example.com", "agent")
        other = self.make_user("unlocked@example.com", "agent")
        for _ in range(5):
            self.login(email, "bad password", expect=401)
        for pw in ("bad password", PASSWORD):
            r = self.login(email, pw, expect=429)
            self.assert_error(r, 429, "too_many_attempts")
            retry = int(r.headers["Retry-After"])
            self.assertTrue(800 <= retry <= 900, retry)
        # Other emails are not affected.
        self.login(other)
        # Five failures whose window has passed no longer count.
        self.srv.sql("UPDATE login_failures SET failed_at = failed_at - 16 * 60 * 1000000 "
                     "WHERE email = '%s'" % email)
        self.login(email)
        # A successful login clears the email's failures.
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM login_failures WHERE email = '%s'"
                                      % email).strip(), "0")

    def test_success_clears_failures(self):
        email = self.make_user("clear@example.com", "agent")
        for _ in range(4):
            self.login(email, "bad password", expect=401)
        self.login(email)
        for _ in range(4):
            self.login(email, "bad password", expect=401)
        self.login(email)  # would be the 9th failure without the reset

    def test_login_and_logout_audited(self):
        email = self.make_user("audited@example.com", "agent")
        r = self.login(email)
        tok = r.json()
        out = self.srv.request("POST", "/api/v1/auth/logout", {"refresh_token": tok["refresh_token"]},
                               headers=bearer(tok["access_token"]))
        self.assertEqual(out.status, 204, out.text)
        uid = self.user_id(email)
        rows = self.srv.sql("SELECT action, table_name, record_id, user_id, request_id, changes "
                            "FROM audit_logs WHERE record_id = '%s' ORDER BY created_at" % uid)
        lines = [l.split("|") for l in rows.strip().splitlines()]
        self.assertEqual([l[0] for l in lines], ["login", "logout"], rows)
        for l in lines:
            self.assertEqual(l[1:4], ["users", uid, uid])
        self.assertEqual(lines[0][4], r.headers["X-Request-Id"])
        self.assertEqual(lines[1][4], out.headers["X-Request-Id"])
        everything = self.srv.sql("SELECT * FROM audit_logs")
        for secret in (PASSWORD, tok["access_token"], tok["refresh_token"]):
            self.assertNotIn(secret, everything)


class AccessTokens(AuthBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.make_user("viewer@example.com", "viewer")

    def claims(self, **over):
        now = int(time.time())
        c = {"sub": self.user_id("viewer@example.com"), "org": self.org_id(), "role": "viewer",
             "iat": now, "exp": now + 600, "jti": str(uuid.uuid4()), "iss": "pytake"}
        c.update(over)
        return c

    def test_real_token_and_self_made_token_work(self):
        tok = self.tokens("viewer@example.com")["access_token"]
        self.assertEqual(self.me(tok).status, 200)
        # Our forging helper is faithful: signed right, it is accepted.
        forged_ok = make_jwt(self.jwt_key(), self.claims())
        self.assertEqual(self.me(forged_ok).status, 200, self.me(forged_ok).text)

    def test_forged_and_broken_tokens(self):
        key = self.jwt_key()
        real = self.tokens("viewer@example.com")["access_token"]
        h, p, s = real.split(".")
        tampered_claims = jwt_payload(real)
        tampered_claims["role"] = "super_admin"
        tampered = "%s.%s.%s" % (h, b64url(json.dumps(tampered_claims).encode()), s)
        now = int(time.time())
        cases = {
            "alg none unsigned": make_jwt(key, self.claims(), alg="none", sign=False),
            "alg none with signature": make_jwt(key, self.claims(), header={"alg": "none", "typ": "JWT"}),
            "alg HS512": make_jwt(key, self.claims(), alg="HS512"),
            "alg RS256 header": make_jwt(key, self.claims(), header={"alg": "RS256", "typ": "JWT"}),
            "alg hs256 lower": make_jwt(key, self.claims(), header={"alg": "hs256", "typ": "JWT"}),
            "wrong iss": make_jwt(key, self.claims(iss="someone-else")),
            "no iss": make_jwt(key, {k: v for k, v in self.claims().items() if k != "iss"}),
            "wrong key": make_jwt(b"not the real secret at all, no no", self.claims()),
            "tampered payload": tampered,
            "signature stripped": "%s.%s." % (h, p),
            "garbage": "not-a-jwt",
            "three dots": "a.b.c",
            "unknown user": make_jwt(key, self.claims(sub=str(uuid.uuid4()))),
            "other org": make_jwt(key, self.claims(org=str(uuid.uuid4()))),
            "empty": "",
        }
        for name, tok in cases.items():
            with self.subTest(case=name):
                self.assert_401(self.me(tok), "invalid_token")
        expired = make_jwt(key, self.claims(iat=now - 1000, exp=now - 10))
        self.assert_401(self.me(expired), "token_expired")
        real_expired_shape = self.me(real)
        self.assertEqual(real_expired_shape.status, 200)

    def test_missing_or_other_scheme_is_unauthenticated(self):
        tok = self.tokens("viewer@example.com")["access_token"]
        self.assert_401(self.srv.request("GET", "/api/v1/auth/me"), "unauthenticated")
        for value in ("Basic dXNlcjpwYXNz", "Token " + tok, tok, "Bearer" + tok):
            with self.subTest(header=value[:12]):
                r = self.srv.request("GET", "/api/v1/auth/me", headers={"Authorization": value})
                self.assert_401(r, "unauthenticated")
        # The scheme is case-insensitive.
        for scheme in ("bearer", "BEARER", "BeArEr"):
            r = self.srv.request("GET", "/api/v1/auth/me",
                                 headers={"Authorization": "%s %s" % (scheme, tok)})
            self.assertEqual(r.status, 200, r.text)

    def test_me(self):
        tok = self.tokens("viewer@example.com")["access_token"]
        r = self.me(tok)
        self.assertEqual(r.status, 200, r.text)
        body = r.json()
        self.assertEqual(body, {
            "id": self.user_id("viewer@example.com"),
            "email": "viewer@example.com",
            "full_name": "User viewer@example.com",
            "role": "viewer",
            "organization": {"id": self.org_id(), "name": "Acme Inc", "slug": "acme"},
        })

    def test_role_change_and_deactivation_take_effect_at_once(self):
        email = self.make_user("demote@example.com", "org_admin")
        tok = self.tokens(email)["access_token"]
        self.assertEqual(self.me(tok).json()["role"], "org_admin")
        self.srv.sql("UPDATE users SET role = 'viewer' WHERE email = '%s'" % email)
        r = self.me(tok)
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json()["role"], "viewer")
        self.srv.sql("UPDATE users SET is_active = %s WHERE email = '%s'"
                     % ("false" if self.srv.engine == "postgresql" else "0", email))
        self.assert_401(self.me(tok), "invalid_token")


class RefreshAndLogout(AuthBase):

    def refresh(self, refresh_token):
        return self.srv.request("POST", "/api/v1/auth/refresh", {"refresh_token": refresh_token})

    def test_refresh_rotates(self):
        email = self.make_user("rotate@example.com", "agent")
        first = self.tokens(email)
        r = self.refresh(first["refresh_token"])
        self.assertEqual(r.status, 200, r.text)
        second = r.json()
        self.assertEqual(second["token_type"], "bearer")
        self.assertEqual(second["expires_in"], 900)
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertEqual(self.me(second["access_token"]).status, 200)
        # The next token of the family works once more.
        r = self.refresh(second["refresh_token"])
        self.assertEqual(r.status, 200, r.text)

    def test_replay_revokes_the_family(self):
        email = self.make_user("replay@example.com", "agent")
        first = self.tokens(email)
        second = self.refresh(first["refresh_token"]).json()
        replay = self.refresh(first["refresh_token"])
        self.assert_401(replay, "invalid_token")
        # The newer token of the family is dead too.
        self.assert_401(self.refresh(second["refresh_token"]), "invalid_token")
        # Another family of the same user is not touched.
        other = self.tokens(email)
        self.assertEqual(self.refresh(other["refresh_token"]).status, 200)

    def test_refresh_errors(self):
        self.assert_401(self.refresh("x" * 43), "invalid_token")
        r = self.srv.request("POST", "/api/v1/auth/refresh", {})
        self.assert_error(r, 422, "validation_error")
        r = self.srv.request("POST", "/api/v1/auth/refresh", {"refresh_token": 12})
        self.assertEqual(r.status, 400, r.text)
        r = self.srv.request("POST", "/api/v1/auth/refresh", "nope")
        self.assertEqual(r.status, 400, r.text)

    def test_expired_refresh_token(self):
        email = self.make_user("oldrefresh@example.com", "agent")
        tok = self.tokens(email)
        h = hashlib.sha256(tok["refresh_token"].encode()).hexdigest()
        self.srv.sql("UPDATE refresh_tokens SET expires_at = 1 WHERE token_hash = '%s'" % h)
        self.assert_401(self.refresh(tok["refresh_token"]), "invalid_token")

    def test_deactivated_user_cannot_refresh(self):
        email = self.make_user("deact@example.com", "agent")
        tok = self.tokens(email)
        self.srv.sql("UPDATE users SET is_active = %s WHERE email = '%s'"
                     % ("false" if self.srv.engine == "postgresql" else "0", email))
        self.assert_401(self.refresh(tok["refresh_token"]), "invalid_token")

    def test_logout_revokes_access_and_refresh(self):
        email = self.make_user("logout@example.com", "viewer")
        tok = self.tokens(email)
        r = self.srv.request("POST", "/api/v1/auth/logout", {"refresh_token": tok["refresh_token"]},
                             headers=bearer(tok["access_token"]))
        self.assertEqual(r.status, 204, r.text)
        self.assertEqual(r.body, b"")
        self.assert_401(self.me(tok["access_token"]), "invalid_token")
        self.assert_401(self.refresh(tok["refresh_token"]), "invalid_token")
        # Logging out again with the revoked token is refused.
        r = self.srv.request("POST", "/api/v1/auth/logout", headers=bearer(tok["access_token"]))
        self.assert_401(r, "invalid_token")
        # The user can log in again.
        fresh = self.tokens(email)
        self.assertEqual(self.me(fresh["access_token"]).status, 200)

    def test_logout_without_body_revokes_the_family_too(self):
        email = self.make_user("logout2@example.com", "viewer")
        tok = self.tokens(email)
        r = self.srv.request("POST", "/api/v1/auth/logout", headers=bearer(tok["access_token"]))
        self.assertEqual(r.status, 204, r.text)
        self.assert_401(self.me(tok["access_token"]), "invalid_token")
        self.assert_401(self.refresh(tok["refresh_token"]), "invalid_token")

    def test_logout_body_errors_and_auth(self):
        email = self.make_user("logout3@example.com", "viewer")
        tok = self.tokens(email)
        r = self.srv.request("POST", "/api/v1/auth/logout", {"refresh_token": 5},
                             headers=bearer(tok["access_token"]))
        self.assertEqual(r.status, 400, r.text)
        self.assert_401(self.srv.request("POST", "/api/v1/auth/logout", {}), "unauthenticated")
        # The failed logout changed nothing.
        self.assertEqual(self.me(tok["access_token"]).status, 200)

    def test_logout_ignores_someone_elses_refresh_token(self):
        a = self.tokens(self.make_user("la@example.com", "viewer"))
        b = self.tokens(self.make_user("lb@example.com", "viewer"))
        r = self.srv.request("POST", "/api/v1/auth/logout", {"refresh_token": b["refresh_token"]},
                             headers=bearer(a["access_token"]))
        self.assertEqual(r.status, 204, r.text)
        self.assertEqual(self.refresh(b["refresh_token"]).status, 200)


class ShortLivedTokens(AuthBase):
    env = {"ACCESS_TOKEN_EXPIRE_MINUTES": "1"}

    def test_expires_in_follows_config(self):
        self.make_user("short@example.com", "viewer")
        body = self.tokens("short@example.com")
        self.assertEqual(body["expires_in"], 60)
        claims = jwt_payload(body["access_token"])
        self.assertEqual(claims["exp"] - claims["iat"], 60)


class SecretsNeverLogged(AuthBase):
    """LOG_LEVEL=debug: whatever the auth routes do, no password, token or
    key reaches the server's log."""
    env = {"LOG_LEVEL": "debug"}

    def test_no_secret_in_the_log(self):
        email = self.make_user("logged@example.com", "org_admin")
        self.login(email, "a wrong password", expect=401)
        tok = self.tokens(email)
        pair = self.srv.request("POST", "/api/v1/auth/refresh",
                                {"refresh_token": tok["refresh_token"]}).json()
        replay = self.srv.request("POST", "/api/v1/auth/refresh",
                                  {"refresh_token": tok["refresh_token"]})
        self.assertEqual(replay.status, 401)
        pair = self.tokens(email)
        created = self.srv.request("POST", "/api/v1/users", {
            "email": "made@example.com", "password": "made-password-77", "full_name": "M",
            "role": "viewer"}, headers=bearer(pair["access_token"]))
        self.assertEqual(created.status, 201, created.text)
        forged = make_jwt(self.jwt_key(), {"sub": "x"}, alg="none", sign=False)
        self.assertEqual(self.me(forged).status, 401)
        out = self.srv.request("POST", "/api/v1/auth/logout",
                               {"refresh_token": pair["refresh_token"]},
                               headers=bearer(pair["access_token"]))
        self.assertEqual(out.status, 204, out.text)
        self.assertEqual(self.me(pair["access_token"]).status, 401)
        log = self.srv.log_text()
        self.assertIn("/api/v1/auth/refresh", log)  # the requests were logged
        secrets_ = [PASSWORD, "a wrong password", "made-password-77", self.jwt_key().decode(),
                    tok["access_token"], tok["refresh_token"], pair["access_token"],
                    pair["refresh_token"], forged]
        for secret in secrets_:
            with self.subTest(secret=secret[:12]):
                self.assertNotIn(secret, log)
                # not even the signature part of a token
                if secret.count(".") == 2 and secret.split(".")[2]:
                    self.assertNotIn(secret.split(".")[2], log)


def redis_command(url, *args):
    """One command to Redis at url (redis://host:port) over RESP; returns
    the decoded reply (int, str, None or list)."""
    import socket
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port or 6379), timeout=5) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        f = s.makefile("rb")

        def read():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind == b"+":
                return rest.decode()
            if kind == b"-":
                raise AssertionError("redis error: %s" % rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:n]
                return data.decode()
            if kind == b"*":
                return [read() for _ in range(int(rest))]
            raise AssertionError("bad redis reply %r" % line)
        return read()


class SharedRevocation(AuthBase):
    """Two server processes on one database: a logout on one is refused by
    the other (the database is the authority)."""

    def test_logout_on_one_process_is_seen_by_another(self):
        email = self.make_user("shared@example.com", "viewer")
        other = Server(env={"DATABASE_URL": self.srv.database_url,
                            "JWT_SECRET_KEY": self.jwt_key().decode()}, migrate=False)
        try:
            other.start()
            tok = self.tokens(email)
            r = other.request("GET", "/api/v1/auth/me", headers=bearer(tok["access_token"]))
            self.assertEqual(r.status, 200, r.text)
            out = self.srv.request("POST", "/api/v1/auth/logout", headers=bearer(tok["access_token"]))
            self.assertEqual(out.status, 204, out.text)
            r = other.request("GET", "/api/v1/auth/me", headers=bearer(tok["access_token"]))
            self.assert_401(r, "invalid_token")
        finally:
            other.close()


REDIS_URL = os.environ.get("PYTAKE_TEST_REDIS_URL")


@unittest.skipUnless(REDIS_URL, "PYTAKE_TEST_REDIS_URL is not set")
class RedisRevocation(AuthBase):
    env = {"REDIS_URL": REDIS_URL}

    def test_logout_mirrors_the_jti_into_redis(self):
        email = self.make_user("redis1@example.com", "viewer")
        tok = self.tokens(email)
        jti = jwt_payload(tok["access_token"])["jti"]
        r = self.srv.request("POST", "/api/v1/auth/logout", headers=bearer(tok["access_token"]))
        self.assertEqual(r.status, 204, r.text)
        key = "pytake:revoked:" + jti
        self.assertEqual(redis_command(REDIS_URL, "EXISTS", key), 1)
        ttl = redis_command(REDIS_URL, "TTL", key)
        self.assertTrue(0 < ttl <= 900, ttl)
        self.assert_401(self.me(tok["access_token"]), "invalid_token")

    def test_a_jti_revoked_in_redis_is_refused(self):
        email = self.make_user("redis2@example.com", "viewer")
        tok = self.tokens(email)["access_token"]
        self.assertEqual(self.me(tok).status, 200)
        jti = jwt_payload(tok)["jti"]
        redis_command(REDIS_URL, "SET", "pytake:revoked:" + jti, "1", "EX", "60")
        self.assert_401(self.me(tok), "invalid_token")


class RedisDown(AuthBase):
    """REDIS_URL pointing at nothing: authentication goes on with the
    database alone, and says so in the log (not once per request)."""

    @classmethod
    def setUpClass(cls):
        from harness import free_port
        cls.env = {"REDIS_URL": "redis://127.0.0.1:%d" % free_port()}
        super().setUpClass()

    def test_auth_works_without_redis(self):
        email = self.make_user("noredis@example.com", "viewer")
        tok = self.tokens(email)
        for _ in range(5):
            self.assertEqual(self.me(tok["access_token"]).status, 200)
        r = self.srv.request("POST", "/api/v1/auth/logout", headers=bearer(tok["access_token"]))
        self.assertEqual(r.status, 204, r.text)
        self.assert_401(self.me(tok["access_token"]), "invalid_token")
        warnings = [l for l in self.srv.log_lines()
                    if l.get("level") == "warn" and "token revocations" in l.get("msg", "")]
        self.assertGreaterEqual(len(warnings), 1)
        self.assertLessEqual(len(warnings), 2, warnings)


if __name__ == "__main__":
    unittest.main()
