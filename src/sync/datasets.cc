// Datasets: the built-in WRDS ones and user datasets from TOML.
#include <toml++/toml.h>

#include "warden/duckdb.h"
#include "warden/error.h"
#include "warden/sync.h"

namespace warden {

std::string DatasetSpec::partition_query(int year) const {
  return year_range_query(query, date_column, year, year);
}

DatasetCatalog DatasetCatalog::builtin() {
  DatasetCatalog catalog;
  catalog.add({"crsp", "daily",
               "SELECT permno, permco, date, prc, ret, retx, vol, shrout, cfacpr, cfacshr "
               "FROM crsp.dsf",
               "date", 2000, "CRSP daily stock file (crsp.dsf)"});
  // The standard screen every Compustat user applies: industrial format, standardized data,
  // domestic population, consolidated statements. ("at" is quoted: a keyword in DuckDB.)
  catalog.add({"compustat", "funda",
               "SELECT gvkey, datadate, fyear, indfmt, datafmt, popsrc, consol, curcd, fyr, "
               "\"at\", lt, sale, ni, ceq, csho FROM comp.funda "
               "WHERE indfmt = 'INDL' AND datafmt = 'STD' AND popsrc = 'D' AND consol = 'C'",
               "datadate", 2000, "Compustat fundamentals annual (comp.funda)"});
  catalog.add({"fama_french", "factors_daily",
               "SELECT date, mktrf, smb, hml, rf, umd FROM ff.factors_daily", "date", 2000,
               "Fama-French daily factors with momentum (ff.factors_daily)"});
  return catalog;
}

void DatasetCatalog::add(DatasetSpec spec) {
  validate_dataset_name(spec.name);
  validate_dataset_name(spec.table);
  std::string name = spec.name;
  specs_[name] = std::move(spec);
}

void DatasetCatalog::load_toml(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw InvalidArgumentError("read datasets file " + path + ": " + std::string(e.description()) +
                               " at line " + std::to_string(e.source().begin.line));
  }
  const toml::table* datasets = root["datasets"].as_table();
  if (!datasets) {
    throw InvalidArgumentError("read datasets file " + path +
                               ": no [datasets.NAME] tables (see docs/concepts/wrds-data.md)");
  }
  for (const auto& [key, node] : *datasets) {
    const std::string name(key.str());
    auto fail = [&](const std::string& problem) {
      throw InvalidArgumentError("read datasets file " + path + ": dataset '" + name +
                                 "': " + problem);
    };
    const toml::table* table = node.as_table();
    if (!table) fail("is not a table");
    for (const auto& [field, value] : *table) {
      std::string f(field.str());
      if (f != "query" && f != "date_column" && f != "table" && f != "start_year" &&
          f != "description") {
        fail("unknown key '" + f + "' (expected query, date_column, table, start_year)");
      }
    }
    DatasetSpec spec;
    spec.name = name;
    auto query = (*table)["query"].value<std::string>();
    auto date_column = (*table)["date_column"].value<std::string>();
    if (!query || query->empty()) fail("needs query = \"SELECT ...\"");
    if (!date_column || date_column->empty()) fail("needs date_column = \"...\"");
    spec.query = *query;
    spec.date_column = *date_column;
    spec.table = (*table)["table"].value_or(std::string("data"));
    spec.start_year = static_cast<int>((*table)["start_year"].value_or(int64_t{2000}));
    spec.description = (*table)["description"].value_or(std::string());
    try {
      add(std::move(spec));
    } catch (const InvalidArgumentError& e) {
      fail(e.what());
    }
  }
}

const DatasetSpec& DatasetCatalog::get(const std::string& name) const {
  validate_dataset_name(name);
  auto it = specs_.find(name);
  if (it == specs_.end()) {
    std::string known;
    for (const auto& [n, _] : specs_) known += (known.empty() ? "" : ", ") + n;
    throw InvalidArgumentError("dataset '" + name + "': unknown; known datasets: " + known +
                               " (add your own with --datasets FILE)");
  }
  return it->second;
}

std::vector<std::string> DatasetCatalog::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : specs_) out.push_back(n);
  return out;
}

}  // namespace warden
