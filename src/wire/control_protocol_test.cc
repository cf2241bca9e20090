#include "wire/control_protocol.h"

#include <doctest/doctest.h>

#include <string>

namespace lottery {

TEST_CASE("a request is one line: command, optional argument") {
  auto status = DecodeControlRequest("status\n");
  REQUIRE(status);
  CHECK(*status == ControlRequest{"status", ""});
  auto show = DecodeControlRequest("show 12\r\n");
  REQUIRE(show);
  CHECK(*show == ControlRequest{"show", "12"});
  CHECK(EncodeControlRequest(*show) == "show 12\n");
  CHECK(EncodeControlRequest(ControlRequest{"close", ""}) == "close\n");
}

TEST_CASE("a bad request is refused with kProtocol") {
  for (std::string bad :
       {std::string(""), std::string("status"), std::string("\n"), std::string("STATUS\n"),
        std::string("st@tus\n"), std::string(" x\n"), std::string("show \x01\n"),
        std::string("\x16\x03\x01\n"), std::string(kMaxControlRequestBytes, 'a') + "\n"}) {
    auto r = DecodeControlRequest(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kProtocol);
  }
  // Exactly the limit, line end included, is fine.
  CHECK(DecodeControlRequest(std::string(kMaxControlRequestBytes - 1, 'a') + "\n"));
}

TEST_CASE("a reply encodes as key=value lines, ok first, and decodes back") {
  ControlReply r = ControlReply::Success();
  r.Set("round", std::uint64_t{3}).Set("state", "open").Set("storage_path", "/var/x=y/bets.csv");
  const std::string text = EncodeControlReply(r);
  CHECK(text == "ok=1\nround=3\nstate=open\nstorage_path=/var/x=y/bets.csv\n");
  auto back = DecodeControlReply(text);
  REQUIRE(back);
  CHECK(back->ok());
  CHECK(back->fields() == r.fields());
  CHECK(back->Get("storage_path") == "/var/x=y/bets.csv");
  CHECK_FALSE(back->Get("missing"));
}

TEST_CASE("a failure carries its error on one line") {
  ControlReply f = ControlReply::Failure("round 1 is open,\nnot drawn");
  CHECK_FALSE(f.ok());
  CHECK(EncodeControlReply(f) == "ok=0\nerror=round 1 is open, not drawn\n");
  auto back = DecodeControlReply(EncodeControlReply(f));
  REQUIRE(back);
  CHECK_FALSE(back->ok());
  CHECK(back->error() == "round 1 is open, not drawn");
}

TEST_CASE("a reply that breaks the format is refused") {
  for (const char* bad : {"", "ok=1", "round=1\nok=1\n", "ok=2\n", "ok=1\nno equals\n",
                          "ok=1\nBad=1\n", "ok=0\n", "ok=1\n=x\n"}) {
    CHECK_FALSE(DecodeControlReply(bad));
  }
}

TEST_CASE("the default control socket: RuntimeDirectory, else beside the bets file") {
  CHECK(DefaultControlSocketPath("/var/lib/lottery/bets.csv", "/run/lottery") ==
        "/run/lottery/control.sock");
  CHECK(DefaultControlSocketPath("bets.csv", "/run/a:/run/b") == "/run/a/control.sock");
  CHECK(DefaultControlSocketPath("/var/lib/lottery/bets.csv", "") ==
        "/var/lib/lottery/bets.csv.control");
}

}  // namespace lottery
