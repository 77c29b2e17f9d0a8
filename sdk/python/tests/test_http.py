"""`http.request` speaks wasi:http through the generated bindings. The resources are
replaced by fakes that check the protocol: what is sent, that a child resource is released
before its parent is finished, that nothing is left behind."""

import unittest
from unittest import mock

import _support
from slashd_plugin import Failed, HostError, HttpError, Plugin, http


class FakeNet:
    """Fake wasi:http resources, one exchange at a time."""

    def __init__(self, b, status=200, headers=(), chunks=(b"",), handle_error=None, response_error=None, never=False):
        self.b = b
        self.status, self.headers, self.chunks = status, list(headers), list(chunks)
        self.handle_error, self.response_error, self.never = handle_error, response_error, never
        self.sent = None
        self.live = set()
        self.events = []
        self.options = "unset"

    # ---- resources ----
    def resource(net, name, parent=None):
        class Resource:
            def __init__(self):
                self.name, self.parent, self.dropped = name, parent, False
                net.live.add(self)

            def __exit__(self, *exc):
                if self.dropped:
                    raise TypeError("cannot unpack non-iterable NoneType object")  # as the real one does
                self.dropped = True
                net.live.discard(self)
                net.events.append(f"drop {name}")

        return Resource()

    def install(net, test):
        b, h = net.b, net.b.http

        class Fields:
            def __init__(self):
                net.fields = net.resource("fields")
                self.pairs = []

            def append(self, name, value):
                if name.lower() == "host":
                    raise b.Err(h.HeaderError_Forbidden())
                self.pairs.append((name, value))

            def entries(self):
                return [(n, v) for n, v in self.pairs]

            def __exit__(self, *exc):
                net.fields.__exit__()

        class OutputStream:
            def __init__(self):
                self.r = net.resource("output-stream")
                net.written = b""

            def blocking_write_and_flush(self, data):
                assert len(data) <= 4096, "one write carries at most 4096 bytes"
                assert net.sent is not None, "the body is written after handle"
                net.written += data

            def __exit__(self, *exc):
                self.r.__exit__()

        class OutgoingBody:
            def __init__(self):
                self.r = net.resource("outgoing-body")
                self.stream = None

            def write(self):
                self.stream = OutputStream()
                return self.stream

            @classmethod
            def finish(cls, this, trailers):
                assert this.stream.r.dropped, "the output stream is released before finish"
                net.events.append("finish outgoing-body")
                this.r.dropped = True
                net.live.discard(this.r)

            def __exit__(self, *exc):
                self.r.__exit__()

        class OutgoingRequest:
            def __init__(self, fields):
                net.live.discard(net.fields)  # taken
                self.headers = fields.pairs
                self.parts = {}
                self.r = net.resource("outgoing-request")

            def set_method(self, m):
                self.parts["method"] = m

            def set_scheme(self, s):
                self.parts["scheme"] = s

            def set_authority(self, a):
                self.parts["authority"] = a

            def set_path_with_query(self, p):
                self.parts["path"] = p

            def body(self):
                self.out = OutgoingBody()
                return self.out

            def __exit__(self, *exc):
                self.r.__exit__()

        class Pollable:
            def __init__(self, ready=True):
                self.r = net.resource("pollable")
                self.is_ready = ready

            def block(self):
                assert not net.never, "blocked forever"

            def __exit__(self, *exc):
                self.r.__exit__()

        class InputStream:
            def __init__(self):
                self.r = net.resource("input-stream")
                self.chunks = list(net.chunks)

            def read(self, n):
                if not self.chunks:
                    raise b.Err(b.streams.StreamError_Closed())
                chunk = self.chunks.pop(0)
                if isinstance(chunk, Exception):
                    raise chunk
                return chunk

            def subscribe(self):
                return Pollable(not net.never)

            def __exit__(self, *exc):
                self.r.__exit__()

        class IncomingBody:
            def __init__(self):
                self.r = net.resource("incoming-body")

            def stream(self):
                self.s = InputStream()
                return self.s

            @classmethod
            def finish(cls, this):
                assert this.s.r.dropped, "the input stream is released before finish"
                this.r.dropped = True
                net.live.discard(this.r)
                net.events.append("finish incoming-body")
                return net.resource("future-trailers")

            def __exit__(self, *exc):
                self.r.__exit__()

        class ResponseFields:
            def __init__(self, pairs):
                self.r = net.resource("response-fields")
                self.pairs = pairs

            def entries(self):
                return self.pairs

            def __exit__(self, *exc):
                self.r.__exit__()

        class IncomingResponse:
            def __init__(self):
                self.r = net.resource("incoming-response")

            def status(self):
                return net.status

            def headers(self):
                return ResponseFields(net.headers)

            def consume(self):
                return IncomingBody()

            def __exit__(self, *exc):
                self.r.__exit__()

        class Future:
            def __init__(self):
                self.r = net.resource("future-incoming-response")

            def subscribe(self):
                return Pollable(not net.never)

            def get(self):
                if net.response_error is not None:
                    return b.Ok(b.Err(net.response_error))
                return b.Ok(b.Ok(IncomingResponse()))

            def __exit__(self, *exc):
                self.r.__exit__()

        def handle(request, options):
            net.live.discard(request.r)  # taken
            net.options = options
            if net.handle_error is not None:
                raise b.Err(net.handle_error)
            net.sent = request
            return Future()

        def poll(pollables):
            return [i for i, p in enumerate(pollables) if p.is_ready]

        for target, name, fake in [
            (h, "Fields", Fields),
            (h, "OutgoingRequest", OutgoingRequest),
            (h, "OutgoingBody", OutgoingBody),
            (h, "IncomingBody", IncomingBody),
            (b.outgoing_handler, "handle", handle),
            (b.clock, "now", lambda: 1_000),
            (b.clock, "subscribe_instant", lambda when: Pollable(True)),
            (b.poll, "poll", poll),
        ]:
            patcher = mock.patch.object(target, name, fake)
            patcher.start()
            test.addCleanup(patcher.stop)
        return net


class Http(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.b = _support.bindings()

    def net(self, **kw):
        return FakeNet(self.b, **kw).install(self)

    def assert_clean(self, net):
        self.assertEqual([r.name for r in net.live], [], "resources left behind")

    def test_a_get(self):
        h = self.b.http
        net = self.net(status=200, headers=[("Content-Type", b"application/json")], chunks=[b'{"ok"', b"", b": true}"])
        resp = http.get("https://api.example.com:8443/v1/status?full=1#frag", headers={"accept": "application/json"})
        self.assertEqual((resp.status, resp.ok, resp.body), (200, True, b'{"ok": true}'))
        self.assertEqual(resp.json(), {"ok": True})
        self.assertEqual(resp.text(), '{"ok": true}')
        self.assertEqual(resp.header("content-type"), "application/json")
        self.assertIsNone(resp.header("x-nope"))
        sent = net.sent
        self.assertEqual(sent.parts["method"], h.Method_Get())
        self.assertEqual(sent.parts["scheme"], h.Scheme_Https())
        self.assertEqual(sent.parts["authority"], "api.example.com:8443")
        self.assertEqual(sent.parts["path"], "/v1/status?full=1")
        self.assertEqual(sent.headers, [("accept", b"application/json")])
        self.assertEqual(net.written, b"")
        self.assertIsNone(net.options)
        self.assert_clean(net)

    def test_a_post(self):
        h = self.b.http
        table = [
            (dict(json={"a": 1}), b'{"a": 1}', [("content-type", b"application/json")]),
            (dict(body="é"), "é".encode(), []),
            (dict(body=b"x" * 10_000, headers=[("x-a", "1"), ("x-a", b"2")]), b"x" * 10_000, [("x-a", b"1"), ("x-a", b"2")]),
            (dict(json=[1], headers={"Content-Type": "text/json"}), b"[1]", [("Content-Type", b"text/json")]),
        ]
        for options, body, headers in table:
            with self.subTest(options=list(options)):
                net = self.net(status=201)
                resp = http.post("http://127.0.0.1:9000", **options)
                self.assertEqual(resp.status, 201)
                self.assertEqual(net.sent.parts["method"], h.Method_Post())
                self.assertEqual(net.sent.parts["scheme"], h.Scheme_Http())
                self.assertEqual(net.sent.parts["path"], "/")
                self.assertEqual(net.written, body)
                self.assertEqual(net.sent.headers, headers)
                self.assert_clean(net)

    def test_methods(self):
        h = self.b.http
        table = [
            ("get", h.Method_Get()),
            ("PUT", h.Method_Put()),
            ("DELETE", h.Method_Delete()),
            ("patch", h.Method_Patch()),
            ("HEAD", h.Method_Head()),
            ("OPTIONS", h.Method_Options()),
            ("PURGE", h.Method_Other("PURGE")),
        ]
        for method, want in table:
            with self.subTest(method=method):
                net = self.net()
                http.request(method, "http://h/p")
                self.assertEqual(net.sent.parts["method"], want)

    def test_urls(self):
        table = [
            ("http://h", "h", "/"),
            ("http://h?q=1", "h", "/?q=1"),
            ("https://H.example:443/a/b?c#d", "H.example:443", "/a/b?c"),
            ("HTTPS://h/x", "h", "/x"),
        ]
        for url, authority, path in table:
            with self.subTest(url=url):
                net = self.net()
                http.get(url)
                self.assertEqual((net.sent.parts["authority"], net.sent.parts["path"]), (authority, path))
        for bad in ["ftp://h/", "h/path", "http://", "http://user@h/", "/relative"]:
            with self.subTest(bad=bad):
                self.net()
                with self.assertRaises(HttpError) as caught:
                    http.get(bad)
                self.assertEqual(caught.exception.code, "HttpRequestUriInvalid")

    def test_errors(self):
        h = self.b.http
        table = [
            (dict(handle_error=h.ErrorCode_HttpRequestDenied()), "HttpRequestDenied", "HTTP request failed: HttpRequestDenied"),
            (dict(response_error=h.ErrorCode_ConnectionRefused()), "ConnectionRefused", "HTTP request failed: ConnectionRefused"),
            (
                dict(response_error=h.ErrorCode_HttpResponseBodySize(1048576)),
                "HttpResponseBodySize",
                "HTTP request failed: HttpResponseBodySize (1048576)",
            ),
            (
                dict(response_error=h.ErrorCode_InternalError("boom")),
                "InternalError",
                "HTTP request failed: InternalError (boom)",
            ),
            (
                dict(response_error=h.ErrorCode_DnsError(h.DnsErrorPayload(rcode="NXDOMAIN", info_code=None))),
                "DnsError",
                "HTTP request failed: DnsError (rcode='NXDOMAIN')",
            ),
        ]
        for kw, code, message in table:
            with self.subTest(code=code):
                net = self.net(**kw)
                with self.assertRaises(HttpError) as caught:
                    http.get("https://h/")
                self.assertEqual(caught.exception.code, code)
                self.assertEqual(str(caught.exception), message)
                self.assertIsInstance(caught.exception, HostError)
                self.assertIsInstance(caught.exception, Failed)
                self.assert_clean(net)

    def test_a_forbidden_header(self):
        net = self.net()
        with self.assertRaises(HttpError) as caught:
            http.get("https://h/", headers={"host": "evil"})
        self.assertEqual(str(caught.exception), "HTTP request failed: Forbidden (header 'host')")
        self.assert_clean(net)

    def test_the_response_size_is_bounded(self):
        net = self.net(chunks=[b"a" * 600, b"b" * 600])
        with self.assertRaises(HttpError) as caught:
            http.get("https://h/", max_bytes=1000)
        self.assertEqual(caught.exception.code, "HttpResponseBodySize")
        self.assert_clean(net)
        net = self.net(chunks=[b"a" * 600, b"b" * 400])
        self.assertEqual(len(http.get("https://h/", max_bytes=1000).body), 1000)
        self.assertEqual(http.MAX_RESPONSE_BYTES, 4 * 1024 * 1024)

    def test_a_timeout(self):
        net = self.net(never=True)
        with self.assertRaises(HttpError) as caught:
            http.get("https://h/", timeout=2)
        self.assertEqual(caught.exception.code, "ConnectionTimeout")
        self.assertIn("no answer within 2s waiting for the response", str(caught.exception))
        self.assert_clean(net)

    def test_the_body_ends_when_the_stream_closes(self):
        net = self.net(chunks=[b"x", self.b.Err(self.b.streams.StreamError_Closed())])
        self.assertEqual(http.get("https://h/").body, b"x")
        self.assert_clean(net)

    def test_a_stream_error(self):
        b = self.b
        h = b.http

        class IoError:
            dropped = False

            def to_debug_string(self):
                return "reset by peer"

            def __exit__(self, *exc):
                self.dropped = True

        table = [
            (h.ErrorCode_ConnectionTerminated(), "HTTP request failed: ConnectionTerminated (reading the response body)"),
            (None, "HTTP request failed: HttpProtocolError (reading the response body: reset by peer)"),
        ]
        for code, message in table:
            with self.subTest(code=code):
                io_error = IoError()
                net = self.net(chunks=[b"x", b.Err(b.streams.StreamError_LastOperationFailed(io_error))])
                with mock.patch.object(h, "http_error_code", lambda e, code=code: code):
                    with self.assertRaises(HttpError) as caught:
                        http.get("https://h/")
                self.assertEqual(str(caught.exception), message)
                self.assertTrue(io_error.dropped)
                self.assert_clean(net)

    def test_a_denied_request_is_a_failed_reply(self):
        self.net(handle_error=self.b.http.ErrorCode_HttpRequestDenied())
        p = Plugin("p", "1", capabilities=["http"])
        p.command("c", "s")(lambda call: http.get("https://h/").text())
        with self.assertRaises(self.b.Err) as caught:
            p.invoke(_support.invocation(self.b, "c"))
        self.assertEqual(caught.exception.value, self.b.types.PluginError_Failed("HTTP request failed: HttpRequestDenied"))


if __name__ == "__main__":
    unittest.main()
