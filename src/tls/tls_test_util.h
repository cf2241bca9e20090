// Certificates for the TLS unit tests: a set made by tools/gen_certs.py in
// a temporary directory (the same tool operators use).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/test_util.h"
#include "tls/tls_settings.h"

namespace lottery::testing {

class CertSet {
 public:
  explicit CertSet(int agencies = 2) { Run("--agencies " + std::to_string(agencies)); }
  // Runs tools/gen_certs.py on this set with `args`; returns its exit status.
  int Run(const std::string& args) {
    std::string command = "python3 " + (SourceRoot() / "tools" / "gen_certs.py").string() + " " +
                          dir_.path().string() + " " + args + " >/dev/null";
    return std::system(command.c_str());
  }
  std::string File(const std::string& name) const { return (dir_.path() / name).string(); }
  const std::filesystem::path& path() const { return dir_.path(); }

  TlsSettings Server() const {
    return TlsSettings{
        TlsMode::kRequired, File("server.pem"), File("server.key"), File("ca.pem"), "", ""};
  }
  TlsSettings Agency(int id) const {
    std::string name = "agency-" + std::to_string(id);
    return TlsSettings{
        TlsMode::kRequired, File(name + ".pem"), File(name + ".key"), File("ca.pem"), "", ""};
  }

 private:
  TempDir dir_;
};

}  // namespace lottery::testing
