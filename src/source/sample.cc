// `warden sample create`: a synthetic, deterministic, WRDS-shaped DuckDB database.
//
// Everything is generated inside DuckDB with set-based SQL (millions of rows in seconds, no
// row-by-row inserts). Randomness is hash(key, seed) mapped to [0,1), so the same options give
// the same rows on every machine and thread count.
#include <cmath>
#include <string>

#include "warden/error.h"
#include "warden/posix.h"
#include "warden/source.h"

namespace warden {

namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

// {seed}, {first}, {end}, {firms}, {companies} are filled in by generate().
constexpr const char* kSampleSql = R"sql(
CREATE SCHEMA crsp;
CREATE SCHEMA comp;
CREATE SCHEMA ff;
CREATE TEMP MACRO u(a, b, c) AS (hash(a, b, c, {seed}::UBIGINT) % 1000003)::DOUBLE / 1000003.0;
CREATE TEMP TABLE days AS
  SELECT d::DATE AS date, row_number() OVER (ORDER BY d)::INTEGER AS day_index
  FROM range(DATE '{first}-01-01', DATE '{end}-01-01', INTERVAL 1 DAY) t(d)
  WHERE isodow(d) <= 5;
CREATE TEMP TABLE firms AS
  WITH n AS (SELECT max(day_index) AS days FROM days)
  SELECT (10001 + i)::INTEGER AS permno,
         (50001 + i // 2)::INTEGER AS permco,
         CASE WHEN u(i, 0, 1) < 0.45 THEN 1 ELSE 1 + floor(u(i, 0, 2) * n.days * 0.8)::INTEGER END
           AS first_day,
         CASE WHEN u(i, 0, 3) < 0.6 THEN n.days ELSE 0 END AS end_hint,
         n.days AS days,
         5 + 95 * u(i, 0, 4) AS base_price,
         6.28 * u(i, 0, 5) AS phase,
         round(1000 + 500000 * u(i, 0, 6)) AS shares
  FROM range({firms}) r(i), n;
CREATE TEMP TABLE listings AS
  SELECT *, CASE WHEN end_hint > 0 THEN end_hint
                 ELSE least(days, first_day + 60 + floor(u(permno, 0, 7) * days)::INTEGER) END
              AS last_day
  FROM firms;
CREATE TABLE crsp.dsf AS
  SELECT l.permno, l.permco, d.date,
    CASE WHEN u(l.permno, d.day_index, 1) < 0.003 THEN NULL
         ELSE (CASE WHEN u(l.permno, d.day_index, 2) < 0.02 THEN -1 ELSE 1 END)
              * round(l.base_price * (1 + 0.5 * sin(d.day_index / 200.0 + l.phase)), 4)
    END::DECIMAL(12,4) AS prc,
    CASE WHEN d.day_index = l.first_day THEN NULL
         ELSE round((u(l.permno, d.day_index, 3) - 0.5) * 0.08, 6) END::DECIMAL(10,6) AS ret,
    CASE WHEN d.day_index = l.first_day THEN NULL
         ELSE round((u(l.permno, d.day_index, 3) - 0.5) * 0.08
                    - CASE WHEN u(l.permno, d.day_index, 4) < 0.01 THEN 0.004 ELSE 0 END, 6)
    END::DECIMAL(10,6) AS retx,
    CASE WHEN u(l.permno, d.day_index, 5) < 0.002 THEN NULL
         ELSE round(u(l.permno, d.day_index, 6) * 2000000) END::DECIMAL(14,0) AS vol,
    l.shares::DECIMAL(12,0) AS shrout,
    CASE WHEN d.day_index > l.first_day + 500 THEN 2 ELSE 1 END::DECIMAL(12,6) AS cfacpr,
    CASE WHEN d.day_index > l.first_day + 500 THEN 2 ELSE 1 END::DECIMAL(12,6) AS cfacshr
  FROM listings l JOIN days d ON d.day_index BETWEEN l.first_day AND l.last_day
  ORDER BY d.date, l.permno;
CREATE TABLE comp.funda AS
  WITH c AS (
    SELECT i, lpad((1000 + i)::VARCHAR, 6, '0') AS gvkey,
           CASE WHEN u(i, 1, 1) < 0.7 THEN 12 ELSE [3, 6, 9][1 + floor(u(i, 1, 2) * 3)::INTEGER] END
             AS fyr,
           100 + 50000 * u(i, 1, 3) AS size
    FROM range({companies}) r(i)),
  y AS (SELECT range::INTEGER AS fyear FROM range({first}, {end}))
  SELECT c.gvkey,
         last_day(make_date(y.fyear + CASE WHEN c.fyr < 6 THEN 1 ELSE 0 END, c.fyr, 1)) AS datadate,
         y.fyear, 'INDL' AS indfmt, 'STD' AS datafmt, 'D' AS popsrc, 'C' AS consol,
         'USD' AS curcd, c.fyr::INTEGER AS fyr,
         round(c.size * (1 + 0.05 * (y.fyear - {first})) * (0.8 + 0.4 * u(c.i, y.fyear, 1)), 3)::DECIMAL(18,3) AS at,
         round(c.size * 0.6 * (0.8 + 0.4 * u(c.i, y.fyear, 2)), 3)::DECIMAL(18,3) AS lt,
         CASE WHEN u(c.i, y.fyear, 3) < 0.05 THEN NULL
              ELSE round(c.size * 0.9 * (0.5 + u(c.i, y.fyear, 4)), 3) END::DECIMAL(18,3) AS sale,
         CASE WHEN u(c.i, y.fyear, 5) < 0.03 THEN NULL
              ELSE round(c.size * (u(c.i, y.fyear, 6) - 0.3) * 0.1, 3) END::DECIMAL(18,3) AS ni,
         round(c.size * 0.4 * (0.8 + 0.4 * u(c.i, y.fyear, 7)), 3)::DECIMAL(18,3) AS ceq,
         round(10 + 500 * u(c.i, 0, 8), 3)::DECIMAL(18,3) AS csho
  FROM c, y
  WHERE u(c.i, y.fyear, 9) < 0.93
  ORDER BY datadate, gvkey;
CREATE TABLE ff.factors_daily AS
  SELECT date,
    round((u(day_index, 2, 1) - 0.48) * 2.5, 4)::DECIMAL(8,4) AS mktrf,
    round((u(day_index, 2, 2) - 0.5) * 1.2, 4)::DECIMAL(8,4) AS smb,
    round((u(day_index, 2, 3) - 0.5) * 1.2, 4)::DECIMAL(8,4) AS hml,
    round(0.002 + 0.008 * (1 + sin(day_index / 900.0)), 4)::DECIMAL(8,4) AS rf,
    CASE WHEN day_index <= 2 THEN NULL
         ELSE round((u(day_index, 2, 4) - 0.5) * 1.5, 4) END::DECIMAL(8,4) AS umd
  FROM days ORDER BY date;
)sql";

}  // namespace

SampleSummary create_sample_database(const std::string& path, const SampleOptions& options) {
  if (!(options.scale > 0) || options.scale > 1000) {
    throw InvalidArgumentError("sample create: --scale must be in (0, 1000], e.g. --scale 1");
  }
  if (options.first_year < 1925 || options.last_year < options.first_year ||
      options.last_year > 2100) {
    throw InvalidArgumentError("sample create: years must satisfy 1925 <= first <= last <= 2100");
  }
  if (stat_path(path)) {
    throw InvalidArgumentError("sample create " + path +
                               ": the file exists; remove it first or choose another path");
  }
  // Built under a temp name and renamed when complete and closed (DuckDB checkpoints its WAL
  // into the file on close), so a crash never leaves a half-made database at `path`.
  const std::string temp = temp_name_beside(path);
  const int64_t firms = std::max<int64_t>(1, std::llround(600 * options.scale));
  const int64_t companies = std::max<int64_t>(1, std::llround(400 * options.scale));
  std::string sql = kSampleSql;
  sql = replace_all(sql, "{seed}", std::to_string(options.seed));
  sql = replace_all(sql, "{first}", std::to_string(options.first_year));
  sql = replace_all(sql, "{end}", std::to_string(options.last_year + 1));
  sql = replace_all(sql, "{firms}", std::to_string(firms));
  sql = replace_all(sql, "{companies}", std::to_string(companies));
  SampleSummary summary;
  try {
    duckdb::Database database = duckdb::Database::open(temp);
    duckdb::Connection connection = database.connect();
    connection.execute(sql);
    summary.dsf_rows = connection.query("SELECT count(*) FROM crsp.dsf").get_int64(0, 0);
    summary.funda_rows = connection.query("SELECT count(*) FROM comp.funda").get_int64(0, 0);
    summary.factors_rows =
        connection.query("SELECT count(*) FROM ff.factors_daily").get_int64(0, 0);
    connection.execute("CHECKPOINT");
  } catch (...) {
    remove_file(temp);
    remove_file(temp + ".wal");
    throw;
  }
  if (!rename_noreplace(temp, path)) {
    remove_file(temp);
    throw InvalidArgumentError("sample create " + path + ": the file appeared meanwhile");
  }
  fsync_directory(parent_directory(path));
  return summary;
}

}  // namespace warden
