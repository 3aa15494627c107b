// Structured events (DESIGN.md "Events").
//
// Every notable event is one record {"ts","level","event","msg",...fields} with a stable
// event name ("sync.lock.stale", "lock.recovered", ...). Where records go is configured once
// per process by configure_events(): to stderr as readable text when stderr is a terminal,
// as JSON lines otherwise or with json_to_stderr; and appended as JSON lines to a file.
// emit_event() is thread-safe and never throws (a failing sink is ignored: an event must
// never turn a good operation into a failed one).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace warden {

enum class EventLevel { kDebug, kInfo, kWarning, kError, kCritical };
const char* event_level_name(EventLevel level);

struct EventSinkOptions {
  enum class StderrFormat { kAuto, kText, kJson, kNone };
  StderrFormat stderr_format = StderrFormat::kAuto;
  std::string log_file;                      // "" = none; appended as JSON lines
  EventLevel min_level = EventLevel::kInfo;  // lower levels are dropped
};

// Replaces the process-wide sink configuration. Thread-safe.
void configure_events(const EventSinkOptions& options);

// True when an event at `level` would reach a sink (stderr, the log file or a capture).
// Lets a hot path skip building an event's message and fields when nobody would read them;
// emit_event() makes the same check itself. Thread-safe, never throws.
bool event_wanted(EventLevel level) noexcept;

// Emits one event. `fields` must be a JSON object (or null); its keys are merged into the
// record after ts/level/event/msg.
void emit_event(EventLevel level, std::string_view event, std::string_view message,
                const nlohmann::json& fields = nullptr) noexcept;

// Test seam: every emitted event is also recorded in memory while capture is on.
void start_event_capture();
std::vector<nlohmann::json> stop_event_capture();

}  // namespace warden
