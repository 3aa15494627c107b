// Settings, redaction, error classification, backoff and the rate limiter.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <thread>

#include "warden/events.h"
#include "warden/posix.h"
#include "warden/postgres.h"

namespace warden::pg {

Settings wrds_preset() {
  Settings settings;
  // WARDEN_WRDS_HOST/PORT/DBNAME point the preset elsewhere (a WRDS cloud node, an SSH
  // tunnel, or the local server the runbook test uses); sslmode=require always stays.
  auto part = [](const char* variable, const char* fallback) {
    const char* value = std::getenv(variable);
    return std::string(value && *value ? value : fallback);
  };
  std::string conninfo = "host='" + part("WARDEN_WRDS_HOST", "wrds-pgdata.wharton.upenn.edu") +
                         "' port=" + part("WARDEN_WRDS_PORT", "9737") + " dbname='" +
                         part("WARDEN_WRDS_DBNAME", "wrds") + "' sslmode=require";
  const char* user = std::getenv("WRDS_USERNAME");
  if (!user || !*user) user = std::getenv("PGUSER");
  if (user && *user) conninfo += std::string(" user='") + user + "'";
  settings.conninfo = conninfo;
  settings.queries_per_minute = 10;  // the seed's WRDSConfig default
  // One COPY at a time: each connection is a Duo push (WARDEN_PG_PARALLEL_EXPORTS=2 trades a
  // second push for up to twice the throughput).
  settings.parallel_exports = 1;
  return settings;
}

Settings settings_from_source(const std::string& source) {
  if (source == "wrds") return wrds_preset();
  Settings settings;
  if (source.rfind("postgresql://", 0) == 0 || source.rfind("postgres://", 0) == 0 ||
      source.find('=') != std::string::npos) {
    settings.conninfo = source;
    return settings;
  }
  throw InvalidArgumentError("parse source '" + redact_conninfo(source) +
                             "': expected wrds, postgresql://... or key=value conninfo");
}

std::string redact_conninfo(const std::string& conninfo) {
  try {
    // key=value form: password=secret or password='se cret'
    static const std::regex kKeyValue(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))",
                                      std::regex::icase);
    std::string out = std::regex_replace(conninfo, kKeyValue, "$1***");
    // URI form: scheme://user:secret@host
    static const std::regex kUri(R"(^(postgres(ql)?://[^:/@]*:)[^@]*@)", std::regex::icase);
    out = std::regex_replace(out, kUri, "$1***@");
    // URI parameter: ?password=secret
    static const std::regex kParam(R"(([?&]password=)[^&]*)", std::regex::icase);
    return std::regex_replace(out, kParam, "$1***");
  } catch (...) {
    return "<conninfo>";
  }
}

bool is_transient_sqlstate(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return false;
  if (sqlstate.substr(0, 2) == "08") return true;  // connection exception
  return sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" || sqlstate == "53300" ||
         sqlstate == "40001" || sqlstate == "40P01";
}

namespace {

class SystemClock : public Clock {
 public:
  std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }
  void sleep_for(std::chrono::nanoseconds duration) override {
    std::this_thread::sleep_for(duration);
  }
};

}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base,
                                        std::chrono::milliseconds max_delay) {
  double delay = static_cast<double>(base.count()) * std::pow(2.0, std::max(0, attempt - 1));
  delay = std::min(delay, static_cast<double>(max_delay.count()));
  // Full jitter in [delay/2, delay]: many clients retrying after one outage must not
  // arrive together (WRDS counts connections per user).
  double fraction = static_cast<double>(random_u64() % 1000001) / 1000000.0;
  return std::chrono::milliseconds(static_cast<int64_t>(delay / 2 + fraction * delay / 2));
}

RateLimiter::RateLimiter(double per_minute, Clock& clock)
    : per_minute_(per_minute),
      capacity_(std::max(1.0, per_minute / 6.0)),
      tokens_(capacity_),
      last_(clock.now()),
      clock_(clock) {}

void RateLimiter::refill_locked() {
  auto now = clock_.now();
  double minutes = std::chrono::duration<double>(now - last_).count() / 60.0;
  tokens_ = std::min(capacity_, tokens_ + minutes * per_minute_);
  last_ = now;
}

void RateLimiter::acquire() {
  if (per_minute_ <= 0) return;
  for (;;) {
    std::chrono::nanoseconds wait{0};
    {
      std::lock_guard<std::mutex> guard(mutex_);
      refill_locked();
      if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return;
      }
      double minutes = (1.0 - tokens_) / per_minute_;
      wait = std::chrono::nanoseconds(static_cast<int64_t>(minutes * 60e9) + 1);
    }
    clock_.sleep_for(wait);
  }
}

double RateLimiter::available() {
  std::lock_guard<std::mutex> guard(mutex_);
  refill_locked();
  return tokens_;
}

void with_retries(const Settings& settings, const std::function<void(int attempt)>& fn,
                  Clock& clock) {
  for (int attempt = 1;; ++attempt) {
    try {
      fn(attempt);
      return;
    } catch (const PostgresError& e) {
      if (e.code() != ErrorCode::kUnavailable || attempt > settings.max_retries) throw;
      auto delay = backoff_delay(attempt, settings.retry_base_delay, settings.retry_max_delay);
      emit_event(EventLevel::kWarning, "source.retry", "transient PostgreSQL failure; retrying",
                 {{"attempt", attempt},
                  {"max_retries", settings.max_retries},
                  {"delay_ms", delay.count()},
                  {"sqlstate", e.sqlstate()},
                  {"error", e.what()}});
      clock.sleep_for(delay);
    }
  }
}

}  // namespace warden::pg

namespace warden::pg {

namespace {

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

double environment_number(const char* name, const std::string& text) {
  size_t used = 0;
  double value = -1;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 0) {
    throw InvalidArgumentError(std::string("read ") + name + "='" + text +
                               "': expected a non-negative number");
  }
  return value;
}

std::chrono::sys_days parse_date(const std::string& text, const char* what) {
  int y = 0;
  unsigned m = 0, d = 0;
  char extra = 0;
  if (std::sscanf(text.c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &extra) != 3) {
    throw InvalidArgumentError(std::string("read ") + what + " '" + text +
                               "': expected a date as YYYY-MM-DD");
  }
  std::chrono::year_month_day date{std::chrono::year(y), std::chrono::month(m),
                                   std::chrono::day(d)};
  if (!date.ok()) {
    throw InvalidArgumentError(std::string("read ") + what + " '" + text + "': no such date");
  }
  return std::chrono::sys_days(date);
}

}  // namespace

void apply_environment(Settings& settings) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  if (auto v = environment("WARDEN_PASSWORD_COMMAND")) settings.password_command = *v;
  auto integer = [](const char* name, int& field) {
    if (auto v = environment(name)) field = static_cast<int>(environment_number(name, *v));
  };
  integer("WARDEN_PG_POOL_SIZE", settings.pool_size);
  integer("WARDEN_PG_MAX_OVERFLOW", settings.max_overflow);
  integer("WARDEN_PG_CONNECTION_LIMIT", settings.server_connection_limit);
  integer("WARDEN_PG_MAX_RETRIES", settings.max_retries);
  integer("WARDEN_PG_PARALLEL_EXPORTS", settings.parallel_exports);
  if (settings.parallel_exports < 1) {
    throw InvalidArgumentError("WARDEN_PG_PARALLEL_EXPORTS must be at least 1, not " +
                               std::to_string(settings.parallel_exports));
  }
  if (auto v = environment("WARDEN_PG_QPM")) {
    settings.queries_per_minute = environment_number("WARDEN_PG_QPM", *v);
  }
  auto duration = [](const char* name, milliseconds& field) {
    if (auto v = environment(name)) {
      field = milliseconds(static_cast<int64_t>(environment_number(name, *v) * 1000));
    }
  };
  duration("WARDEN_PG_QUERY_TIMEOUT", settings.query_timeout);
  duration("WARDEN_PG_COPY_TIMEOUT", settings.copy_timeout);
  if (auto v = environment("WARDEN_PG_CONNECT_TIMEOUT")) {
    settings.connect_timeout =
        seconds(static_cast<int64_t>(environment_number("WARDEN_PG_CONNECT_TIMEOUT", *v)));
  }
  if (auto v = environment("WARDEN_CREDENTIAL_EXPIRES")) {
    parse_date(*v, "WARDEN_CREDENTIAL_EXPIRES");
    settings.credential_expires = *v;
  }
}

std::optional<int> check_credential_expiry(const Settings& settings, const std::string& today) {
  if (settings.credential_expires.empty()) return std::nullopt;
  auto expires = parse_date(settings.credential_expires, "credential_expires");
  int days = static_cast<int>((expires - parse_date(today, "today")).count());
  if (days < 30) {
    bool expired = days < 0;
    emit_event(expired ? EventLevel::kCritical : EventLevel::kWarning, "sync.credential.expiring",
               expired ? "the database password expired " + std::to_string(-days) +
                             " days ago: rotate it (docs/runbooks/wrds-credentials.md)"
                       : "the database password expires in " + std::to_string(days) +
                             " days: rotate it before then (docs/runbooks/wrds-credentials.md)",
               {{"expires", settings.credential_expires}, {"days_left", days}});
  }
  return days;
}

}  // namespace warden::pg
