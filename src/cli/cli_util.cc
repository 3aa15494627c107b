#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli.h"
#include "warden/error.h"

namespace warden::cli {

bool stdin_is_terminal() { return ::isatty(STDIN_FILENO) == 1; }
bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

bool confirm(const std::string& question) {
  if (!stdin_is_terminal()) return false;
  std::fprintf(stderr, "%s [y/N] ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "YES";
}

double parse_duration_seconds(const std::string& text) {
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw InvalidArgumentError("parse duration '" + text + "': expected e.g. 30s, 120m, 2h");
  }
  std::string unit = text.substr(pos);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ms")
    scale = 0.001;
  else if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else if (unit == "d")
    scale = 86400;
  if (scale == 0 || value < 0) {
    throw InvalidArgumentError("parse duration '" + text + "': expected e.g. 30s, 120m, 2h");
  }
  return value * scale;
}

}  // namespace warden::cli
