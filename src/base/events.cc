#include "warden/events.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "warden/posix.h"

namespace warden {

namespace {

struct EventState {
  std::mutex mutex;
  EventSinkOptions options;
  bool capturing = false;
  std::vector<nlohmann::json> captured;
};

EventState& state() {
  static EventState* s = new EventState();  // never destroyed: events may fire at exit
  return *s;
}

bool stderr_wants_json(const EventSinkOptions& options) {
  switch (options.stderr_format) {
    case EventSinkOptions::StderrFormat::kJson:
      return true;
    case EventSinkOptions::StderrFormat::kText:
      return false;
    default:
      return ::isatty(STDERR_FILENO) == 0;
  }
}

std::string as_text(const nlohmann::json& record) {
  std::string line =
      record.value("level", "") + " " + record.value("event", "") + ": " + record.value("msg", "");
  std::string details;
  for (auto it = record.begin(); it != record.end(); ++it) {
    if (it.key() == "ts" || it.key() == "level" || it.key() == "event" || it.key() == "msg") {
      continue;
    }
    details += (details.empty() ? "" : ", ") + it.key() + "=" +
               (it->is_string() ? it->get<std::string>() : it->dump());
  }
  if (!details.empty()) line += " (" + details + ")";
  return line;
}

bool reaches_a_sink(const EventState& s, EventLevel level) {
  if (s.capturing) return true;
  if (level < s.options.min_level) return false;
  return s.options.stderr_format != EventSinkOptions::StderrFormat::kNone ||
         !s.options.log_file.empty();
}

}  // namespace

const char* event_level_name(EventLevel level) {
  switch (level) {
    case EventLevel::kDebug:
      return "debug";
    case EventLevel::kInfo:
      return "info";
    case EventLevel::kWarning:
      return "warning";
    case EventLevel::kError:
      return "error";
    case EventLevel::kCritical:
      return "critical";
  }
  return "info";
}

void configure_events(const EventSinkOptions& options) {
  std::lock_guard<std::mutex> guard(state().mutex);
  state().options = options;
}

bool event_wanted(EventLevel level) noexcept {
  std::lock_guard<std::mutex> guard(state().mutex);
  return reaches_a_sink(state(), level);
}

void emit_event(EventLevel level, std::string_view event, std::string_view message,
                const nlohmann::json& fields) noexcept {
  try {
    if (!event_wanted(level)) return;
    nlohmann::json record;
    record["ts"] = format_utc(std::chrono::system_clock::now());
    record["level"] = event_level_name(level);
    record["event"] = std::string(event);
    record["msg"] = std::string(message);
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it) record[it.key()] = it.value();
    }
    std::lock_guard<std::mutex> guard(state().mutex);
    const EventSinkOptions& options = state().options;
    if (state().capturing) state().captured.push_back(record);
    if (level < options.min_level) return;
    std::string json_line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (options.stderr_format != EventSinkOptions::StderrFormat::kNone) {
      std::string line = stderr_wants_json(options) ? json_line : as_text(record);
      line += '\n';
      (void)!::write(STDERR_FILENO, line.data(), line.size());
    }
    if (!options.log_file.empty()) {
      if (FILE* file = std::fopen(options.log_file.c_str(), "ae")) {
        std::fprintf(file, "%s\n", json_line.c_str());
        std::fclose(file);
      }
    }
  } catch (...) {
    // An event must never fail the operation that raised it.
  }
}

void start_event_capture() {
  std::lock_guard<std::mutex> guard(state().mutex);
  state().capturing = true;
  state().captured.clear();
}

std::vector<nlohmann::json> stop_event_capture() {
  std::lock_guard<std::mutex> guard(state().mutex);
  state().capturing = false;
  return std::move(state().captured);
}

}  // namespace warden
