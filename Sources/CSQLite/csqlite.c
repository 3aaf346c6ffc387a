#include "csqlite.h"

void iotkube_sqlite_bind_text_copy(sqlite3_stmt *statement, int index, const char *text, int length) {
    sqlite3_bind_text(statement, index, text, length, SQLITE_TRANSIENT);
}

void iotkube_sqlite_bind_blob_copy(sqlite3_stmt *statement, int index, const void *bytes, int length) {
    sqlite3_bind_blob(statement, index, bytes, length, SQLITE_TRANSIENT);
}
