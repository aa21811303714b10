/*
 * crisp: logging.  Each process logs lines to stderr:
 *   <level> <role>[<pid>]: <message>
 * crispd reads its roles' stderr through pipes, strips control bytes, caps
 * the line length and re-emits them, so a compromised role cannot forge
 * another role's lines or inject terminal escapes.
 */
#ifndef CRISP_LOG_H
#define CRISP_LOG_H

enum crisp_log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

void log_init(const char *role, int level);
void log_set_level(int level);
int log_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Log and exit(1).  For daemons' top level only, never in library code. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
