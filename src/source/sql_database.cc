// What every store backend shares: the transaction loop and the database clock.
#include <chrono>
#include <thread>

#include "warden/sql.h"

namespace warden::sql {

void Database::run_transaction(int& depth, const std::function<void()>& fn,
                               const std::function<void()>& begin,
                               const std::function<void()>& commit,
                               const std::function<void()>& rollback) {
  if (depth > 0) {
    fn();
    return;
  }
  for (int attempt = 1;; ++attempt) {
    try {
      begin();
      depth = 1;
      fn();
      commit();
      depth = 0;
      return;
    } catch (const SqlError& e) {
      rollback();
      if (e.code() != ErrorCode::kUnavailable || attempt >= 5) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10 * attempt));
    } catch (...) {
      rollback();
      throw;
    }
  }
}

int64_t Database::clock_ms() {
  return std::stoll(query(std::string("SELECT ") + now_ms(), {}).at(0).at(0).value());
}

}  // namespace warden::sql
