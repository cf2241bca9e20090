// BetSender keeps up to batch.window BETS frames in flight on the agency's
// ServerLink: it sends each batch as it is built, retires batches as their
// ACKs arrive (in order), resumes after a reconnect with only what the
// server's WELCOME says it lacks (the batches in flight numbered last_seq or
// less are stored: the same batches, sent before the connection broke), and
// renumbers the batches behind a refused one. After each reconnect it checks
// that the server holds exactly the bets it knows of, so that another
// process storing bets for the agency meanwhile stops it rather than
// causing a duplicate. It owns the window of preallocated frames (agency/batch_window.h);
// the configuration and the link must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "agency/agency_config.h"
#include "agency/batch_window.h"
#include "agency/server_link.h"
#include "common/latency_histogram.h"

namespace lottery {

class BetSender {
 public:
  // Frames are sent in groups of about this many bytes, with one gathered
  // write: on loopback and LAN the kernel's cost is per send as much as per
  // byte, and 8 KiB frames one send each cost an agency and the server
  // more CPU than the bytes do (docs/PERFORMANCE.md). A group waits only
  // for the agency's own encoding of the next frames, never for the network.
  static constexpr std::size_t kSendBytes = 64 * 1024;

  BetSender(const AgencyConfig& config, ServerLink& link)
      : config_(config), link_(link), window_(static_cast<std::size_t>(config.batch_window)) {}

  // The frame the next batch is to be encoded into (BetBatchEncoder), with
  // sequence number next_seq().
  std::string& NextFrame() { return window_.NextFrame(); }
  std::uint64_t next_seq() const { return next_seq_; }
  // Numbers the batches from `seq` on (after the server's last_seq); the
  // server holds `bets_before` bets of the agency, which this process skips
  // (agency/resume.h). Call once connected, before the first batch.
  void StartAt(std::uint64_t seq, std::uint64_t bets_before) {
    next_seq_ = seq;
    bets_before_ = bets_before;
    checked_session_ = link_.sessions();
  }
  // Connects (with HELLO) unless connected; after a reconnect, retires the
  // batches the server holds and checks its count of bets (kIdTaken when it
  // holds others). Every reconnect of a mode that sends bets goes through here.
  Step Connect();

  // Takes the batch just encoded into NextFrame() (`count` bets); sends the
  // batches not yet sent once they come to kSendBytes or fill the window,
  // and, while the window is full, waits for the oldest ack.
  Step Submit(std::uint16_t count);
  // Sends the batches built but not sent yet, without waiting for acks:
  // before the agency waits for more input (a dataset on a pipe), so that
  // grouping never holds a whole batch back for the input's sake.
  Step Flush();
  // Waits for every batch in flight to be acked or refused.
  Step Drain();

  std::uint64_t batches_acked() const { return batches_acked_; }
  std::uint64_t bets_acked() const { return bets_acked_; }
  // Called after every ack (the progress line).
  void OnAck(std::function<void()> callback) { on_ack_ = std::move(callback); }
  std::uint64_t bets_rejected() const { return bets_rejected_; }
  std::size_t window_capacity() const { return window_.capacity(); }
  const LatencyHistogram& ack_latency() const { return ack_latency_; }

 private:
  // Reconnects when needed (retiring what the server already holds) and
  // writes every batch not yet sent on this connection.
  Step SendPending();
  // Reads one reply: the oldest batch's ack or refusal.
  Step AwaitOldest();
  // After the oldest batch was refused: reads the SEQUENCE_GAP replies of the
  // batches sent behind it, then renumbers them to close the gap.
  Step SkipRejected();

  const AgencyConfig& config_;
  ServerLink& link_;
  BatchWindow window_;
  LatencyHistogram ack_latency_;
  std::uint64_t next_seq_ = 1;            // sequence number of the next batch built
  std::uint64_t bets_before_ = 0;         // stored before this process (StartAt)
  std::uint64_t checked_session_ = 0;     // the link's session Connect() last checked
  std::size_t unsent_bytes_ = 0;          // of the batches pushed since the last send
  std::vector<std::string_view> gather_;  // SendPending's list of frames, reused
  std::uint64_t batches_acked_ = 0;
  std::uint64_t bets_acked_ = 0;
  std::function<void()> on_ack_;
  std::uint64_t bets_rejected_ = 0;
};

}  // namespace lottery
