// The one table of kiln's debug switches (environment variables). Nothing else reads getenv.
#pragma once
#include <string>

namespace kiln::env {

// KILN_LOG_LEVEL: error|warning|info|verbose (default warning). Library log verbosity.
std::string log_level();
// KILN_DUMP_AFTER=<pass>|all: print the graph after the named pass (or every pass) to stderr.
std::string dump_after();
// KILN_VERIFY=0|1: run the graph verifier after every pass (default 1; it is cheap).
bool verify_passes();

}  // namespace kiln::env
