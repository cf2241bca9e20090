#include "wire/frame_io.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/unique_fd.h"

namespace lottery {
namespace {

struct SocketPair {
  UniqueFd a, b;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    a.Reset(fds[0]);
    b.Reset(fds[1]);
  }
};

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    read.Reset(fds[0]);
    write.Reset(fds[1]);
  }
};

// The socket, counting its gathered writes.
class CountingStream final : public ByteStream {
 public:
  explicit CountingStream(int fd) : plain_(fd) {}
  int fd() const override { return plain_.fd(); }
  StreamStep ReadSome(char* buffer, std::size_t length) override {
    return plain_.ReadSome(buffer, length);
  }
  StreamStep WriteSome(const char* buffer, std::size_t length) override {
    return plain_.WriteSome(buffer, length);
  }
  StreamStep WriteSomeOf(std::span<const std::string_view> pieces) override {
    ++gathered_writes;
    return plain_.WriteSomeOf(pieces);
  }
  const std::string& error() const override { return plain_.error(); }
  std::size_t gathered_writes = 0;

 private:
  PlainStream plain_;
};

// The socket without gathering: ByteStream's WriteSomeOf over WriteSome.
class UngatheredStream final : public ByteStream {
 public:
  explicit UngatheredStream(int fd) : plain_(fd) {}
  int fd() const override { return plain_.fd(); }
  StreamStep ReadSome(char* buffer, std::size_t length) override {
    return plain_.ReadSome(buffer, length);
  }
  StreamStep WriteSome(const char* buffer, std::size_t length) override {
    ++writes;
    return plain_.WriteSome(buffer, length);
  }
  const std::string& error() const override { return plain_.error(); }
  std::size_t writes = 0;

 private:
  PlainStream plain_;
};

void SendRaw(int fd, const std::string& bytes) {
  PlainStream stream(fd);
  REQUIRE(WriteAll(stream, bytes, -1, Millis(1000)) == IoStatus::kOk);
}

TEST_CASE("a frame dribbled one byte at a time arrives whole") {
  SocketPair s;
  std::string frames;
  EncodeEcho(frames, "hello, world");
  EncodeHello(frames, 7);
  std::thread writer([&] {
    for (char c : frames) {
      ::send(s.b.get(), &c, 1, MSG_NOSIGNAL);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  Frame f;
  REQUIRE(reader.Read(f, Millis(5000), Millis(5000)) == IoStatus::kOk);
  CHECK(f.type == static_cast<std::uint8_t>(MessageType::kEcho));
  CHECK(f.payload == "hello, world");
  REQUIRE(reader.Read(f, Millis(5000), Millis(5000)) == IoStatus::kOk);
  CHECK(f.type == static_cast<std::uint8_t>(MessageType::kHello));
  CHECK(DecodeHello(f.payload).value() == 7);
  writer.join();
}

TEST_CASE("many frames in one segment are read one by one") {
  SocketPair s;
  std::string frames;
  for (int i = 0; i < 50; ++i)
    EncodeEcho(frames, std::string(static_cast<std::size_t>(i * 37), 'x'));
  SendRaw(s.b.get(), frames);
  s.b.Reset();
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  for (int i = 0; i < 50; ++i) {
    Frame f;
    REQUIRE(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kOk);
    CHECK(f.payload.size() == static_cast<std::size_t>(i * 37));
  }
  Frame f;
  CHECK(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kClosed);
}

// A peer that keeps the buffer full makes it grow, frames intact across the
// growth; one that sends a frame at a time leaves it as it started.
TEST_CASE("the read buffer grows while the peer keeps it full, and only then") {
  SocketPair s;
  std::string frames;
  constexpr int kFrames = 160;  // 160 x 8 KiB: more than the largest buffer
  for (int i = 0; i < kFrames; ++i) {
    EncodeEcho(frames,
               std::string(kMaxFrameSize - kFrameHeaderSize, static_cast<char>('a' + i % 26)));
  }
  std::thread writer([&] {
    SendRaw(s.b.get(), frames);
    s.b.Reset();
  });
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  CHECK(reader.capacity() == FrameReader::kStartBuffer);
  for (int i = 0; i < kFrames; ++i) {
    Frame f;
    REQUIRE(reader.Read(f, Millis(5000), Millis(5000)) == IoStatus::kOk);
    CHECK(f.payload ==
          std::string(kMaxFrameSize - kFrameHeaderSize, static_cast<char>('a' + i % 26)));
    // A slow reader: the writer fills whatever room the socket has.
    if (i % 16 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  writer.join();
  Frame f;
  CHECK(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kClosed);
  CHECK(reader.capacity() == FrameReader::kMaxBuffer);

  SocketPair t;
  PlainStream small_stream(t.a.get());
  FrameReader small(small_stream, -1);
  for (int i = 0; i < 100; ++i) {
    std::string frame;
    EncodeEcho(frame, std::string(1000, 'y'));
    SendRaw(t.b.get(), frame);
    REQUIRE(small.Read(f, Millis(1000), Millis(1000)) == IoStatus::kOk);
    CHECK(f.payload.size() == 1000);
  }
  CHECK(small.capacity() == FrameReader::kStartBuffer);
}

TEST_CASE("an oversized header is refused before its payload is read") {
  SocketPair s;
  // Announces 100000 bytes but sends none: the reader must not wait for them.
  SendRaw(s.b.get(), std::string("\x02\x00\x01\x86\xa0", 5));
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  Frame f;
  CHECK(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kTooLarge);
  CHECK(reader.header().length == 100000);
  CHECK(f.type == 0x02);
}

TEST_CASE("the largest allowed frame is accepted, one byte more is not") {
  SocketPair s;
  std::string ok;
  EncodeEcho(ok, std::string(kMaxPayloadSize, 'a'));
  std::thread writer([&] { SendRaw(s.b.get(), ok); });
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  Frame f;
  CHECK(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kOk);
  CHECK(f.payload.size() == kMaxPayloadSize);
  writer.join();
  std::string big;
  EncodeEcho(big, std::string(kMaxPayloadSize + 1, 'a'));
  SendRaw(s.b.get(), big.substr(0, kFrameHeaderSize));
  CHECK(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kTooLarge);
}

TEST_CASE("a peer that closes mid-frame is reported as truncated") {
  SocketPair s;
  std::string frame;
  EncodeEcho(frame, "0123456789");
  SendRaw(s.b.get(), frame.substr(0, 8));
  s.b.Reset();
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  Frame f;
  CHECK(reader.Read(f, Millis(1000), Millis(1000)) == IoStatus::kTruncated);
}

TEST_CASE("a stalled frame times out; an idle wait can be unbounded") {
  SocketPair s;
  std::string frame;
  EncodeEcho(frame, "0123456789");
  SendRaw(s.b.get(), frame.substr(0, 3));
  PlainStream stream(s.a.get());
  FrameReader reader(stream, -1);
  Frame f;
  CHECK(reader.Read(f, std::nullopt, Millis(50)) == IoStatus::kTimeout);

  SocketPair idle;
  PlainStream idle_stream(idle.a.get());
  FrameReader idle_reader(idle_stream, -1);
  CHECK(idle_reader.Read(f, Millis(20), Millis(1000)) == IoStatus::kTimeout);
}

TEST_CASE("the cancel descriptor interrupts a blocked read without consuming it") {
  SocketPair s;
  Pipe cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    REQUIRE(::write(cancel.write.get(), "x", 1) == 1);
  });
  PlainStream stream(s.a.get());
  FrameReader reader(stream, cancel.read.get());
  Frame f;
  CHECK(reader.Read(f, std::nullopt, Millis(1000)) == IoStatus::kCancelled);
  canceller.join();
  char c;
  CHECK(::read(cancel.read.get(), &c, 1) == 1);  // still there for the caller
}

TEST_CASE("writes to a closed peer fail without SIGPIPE") {
  SocketPair s;
  s.b.Reset();
  std::string big(1 << 20, 'x');
  CHECK(WriteAll(*std::make_unique<PlainStream>(s.a.get()), big, -1, Millis(1000)) ==
        IoStatus::kError);
}

TEST_CASE("a large write completes while the peer reads slowly") {
  SocketPair s;
  std::string big(1 << 20, 'y');
  std::size_t got = 0;
  std::thread reader([&] {
    char buf[4096];
    while (got < big.size()) {
      ssize_t n = ::read(s.b.get(), buf, sizeof buf);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
  });
  CHECK(WriteAll(*std::make_unique<PlainStream>(s.a.get()), big, -1, Millis(5000)) ==
        IoStatus::kOk);
  reader.join();
  CHECK(got == big.size());
}

// Pieces of many sizes (empty ones among them) through a small socket
// buffer: every byte arrives once, in order, and far fewer writes than
// pieces were made.
TEST_CASE("gathered pieces arrive in order through partial writes") {
  SocketPair s;
  const int small = 16 * 1024;
  REQUIRE(::setsockopt(s.a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  std::vector<std::string> storage;
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    storage.push_back(std::string(static_cast<std::size_t>(i % 7 == 0 ? 0 : 1 + (i * 977) % 9000),
                                  static_cast<char>('a' + i % 26)));
    expected += storage.back();
  }
  std::vector<std::string_view> pieces(storage.begin(), storage.end());
  std::string got;
  std::thread reader([&] {
    char buf[3000];
    while (got.size() < expected.size()) {
      ssize_t n = ::read(s.b.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  CountingStream stream(s.a.get());
  CHECK(WriteAll(stream, std::span(pieces), -1, Millis(5000)) == IoStatus::kOk);
  reader.join();
  CHECK(got == expected);
  for (std::string_view piece : pieces) CHECK(piece.empty());
  CHECK(stream.gathered_writes > 0);
  CHECK(stream.gathered_writes < pieces.size());
}

// A stream that cannot gather (ByteStream's own WriteSomeOf, as TLS) still
// writes every piece, in order, one write per piece at most.
TEST_CASE("gathered pieces through a stream without gathering") {
  SocketPair s;
  UngatheredStream stream(s.a.get());
  std::vector<std::string> storage = {"", "abc", "", "", "defgh", "i", ""};
  std::vector<std::string_view> pieces(storage.begin(), storage.end());
  CHECK(WriteAll(stream, std::span(pieces), -1, Millis(1000)) == IoStatus::kOk);
  char buf[16] = {};
  CHECK(::recv(s.b.get(), buf, sizeof buf, MSG_DONTWAIT) == 9);
  CHECK(std::string(buf, 9) == "abcdefghi");
  CHECK(stream.writes == 3);
}

TEST_CASE("gathered writes to a closed peer fail without SIGPIPE") {
  SocketPair s;
  s.b.Reset();
  std::string big(1 << 20, 'x');
  std::vector<std::string_view> pieces = {big, big};
  PlainStream stream(s.a.get());
  CHECK(WriteAll(stream, std::span(pieces), -1, Millis(1000)) == IoStatus::kError);
}

}  // namespace
}  // namespace lottery
