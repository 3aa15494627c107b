// libpq: every function warden calls, resolved on first use through
// lazy_symbol() (include/warden/lazy_library.h) so that the executable does not load the
// library at start. Include this instead of the library's header, after it if both. A
// function missing from the list links against the library directly and the warden
// executable (which does not link it) fails to link: add the name here.
#pragma once

#include <libpq-fe.h>

#include "warden/lazy_library.h"

// Each call site caches its own pointer; the first call resolves it (and may throw
// IoError when the library cannot be loaded).
#define WARDEN_LAZY_LIBPQ(name)                                       \
  ([]() {                                                             \
    static const auto function = reinterpret_cast<decltype(&::name)>( \
        ::warden::lazy_symbol(::warden::LazyLibrary::kLibpq, #name)); \
    return function;                                                  \
  }())

#define PQbackendPID(...) WARDEN_LAZY_LIBPQ(PQbackendPID)(__VA_ARGS__)
#define PQcancel(...) WARDEN_LAZY_LIBPQ(PQcancel)(__VA_ARGS__)
#define PQclear(...) WARDEN_LAZY_LIBPQ(PQclear)(__VA_ARGS__)
#define PQconnectdbParams(...) WARDEN_LAZY_LIBPQ(PQconnectdbParams)(__VA_ARGS__)
#define PQconsumeInput(...) WARDEN_LAZY_LIBPQ(PQconsumeInput)(__VA_ARGS__)
#define PQerrorMessage(...) WARDEN_LAZY_LIBPQ(PQerrorMessage)(__VA_ARGS__)
#define PQfinish(...) WARDEN_LAZY_LIBPQ(PQfinish)(__VA_ARGS__)
#define PQfmod(...) WARDEN_LAZY_LIBPQ(PQfmod)(__VA_ARGS__)
#define PQfname(...) WARDEN_LAZY_LIBPQ(PQfname)(__VA_ARGS__)
#define PQfreeCancel(...) WARDEN_LAZY_LIBPQ(PQfreeCancel)(__VA_ARGS__)
#define PQfreemem(...) WARDEN_LAZY_LIBPQ(PQfreemem)(__VA_ARGS__)
#define PQftype(...) WARDEN_LAZY_LIBPQ(PQftype)(__VA_ARGS__)
#define PQgetCancel(...) WARDEN_LAZY_LIBPQ(PQgetCancel)(__VA_ARGS__)
#define PQgetCopyData(...) WARDEN_LAZY_LIBPQ(PQgetCopyData)(__VA_ARGS__)
#define PQgetResult(...) WARDEN_LAZY_LIBPQ(PQgetResult)(__VA_ARGS__)
#define PQgetisnull(...) WARDEN_LAZY_LIBPQ(PQgetisnull)(__VA_ARGS__)
#define PQgetlength(...) WARDEN_LAZY_LIBPQ(PQgetlength)(__VA_ARGS__)
#define PQgetvalue(...) WARDEN_LAZY_LIBPQ(PQgetvalue)(__VA_ARGS__)
#define PQisBusy(...) WARDEN_LAZY_LIBPQ(PQisBusy)(__VA_ARGS__)
#define PQnfields(...) WARDEN_LAZY_LIBPQ(PQnfields)(__VA_ARGS__)
#define PQntuples(...) WARDEN_LAZY_LIBPQ(PQntuples)(__VA_ARGS__)
#define PQresStatus(...) WARDEN_LAZY_LIBPQ(PQresStatus)(__VA_ARGS__)
#define PQresultErrorField(...) WARDEN_LAZY_LIBPQ(PQresultErrorField)(__VA_ARGS__)
#define PQresultErrorMessage(...) WARDEN_LAZY_LIBPQ(PQresultErrorMessage)(__VA_ARGS__)
#define PQresultStatus(...) WARDEN_LAZY_LIBPQ(PQresultStatus)(__VA_ARGS__)
#define PQsendQuery(...) WARDEN_LAZY_LIBPQ(PQsendQuery)(__VA_ARGS__)
#define PQsendQueryParams(...) WARDEN_LAZY_LIBPQ(PQsendQueryParams)(__VA_ARGS__)
#define PQserverVersion(...) WARDEN_LAZY_LIBPQ(PQserverVersion)(__VA_ARGS__)
#define PQsocket(...) WARDEN_LAZY_LIBPQ(PQsocket)(__VA_ARGS__)
#define PQstatus(...) WARDEN_LAZY_LIBPQ(PQstatus)(__VA_ARGS__)
#define PQtransactionStatus(...) WARDEN_LAZY_LIBPQ(PQtransactionStatus)(__VA_ARGS__)
