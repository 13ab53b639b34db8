// Text records of kiln's cache files (timing cache, calibration cache): tokens with '%', spaces,
// control and non-ASCII bytes written as %XX, so that a record is one line of space-separated
// fields whatever the names in it hold.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

std::string escape(std::string_view s);
// False when s holds a '%' not followed by two hex digits.
bool unescape(std::string_view s, std::string& out);
// The fields of a line, split at each space (empty fields kept: two spaces are malformed).
std::vector<std::string_view> split_spaces(std::string_view line);

}  // namespace kiln
