// lottery-agency: one betting agency's client. Modes:
//  - lottery (default): stream the agency's CSV file to the server in
//    batches, say FINISHED, wait for the draw and print the winning
//    documents to stdout, one per line;
//  - echo: the exercise's first part, loop.amount echo messages;
//  - bet: one bet taken from NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO, NUMERO.
//
// A lost connection is not fatal: the agency reconnects within
// server.connect_timeout, introduces itself again and resumes from the
// sequence number the server reports.
#pragma once

#include <map>
#include <string>

#include "agency/agency_config.h"

namespace lottery {

// Runs the agency and returns the process exit code (sysexits,
// common/exit_codes.h).
// `env` supplies the bet of bet mode.
int RunAgency(const AgencyConfig& config, const std::map<std::string, std::string>& env);

}  // namespace lottery
