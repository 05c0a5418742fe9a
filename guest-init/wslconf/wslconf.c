/* A small INI reader for /etc/wsl.conf: [section], key = value, # and ; comments, keys and
 * sections case-insensitive, values trimmed and unquoted, booleans true/false/yes/no/1/0. Lines
 * longer than the buffer, unknown keys and malformed lines are ignored, never fatal. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "wslconf.h"

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

static void set_bool(int *out, const char *v)
{
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
        *out = 0;
}

static void set_str(char *out, size_t len, const char *v)
{
    snprintf(out, len, "%s", v);
}

void wslconf_load(const char *path, struct wslconf *c)
{
    *c = (struct wslconf){.generate_hosts = 1, .generate_resolv_conf = 1, .automount_enabled = 1, .mount_fstab = 1};
    set_str(c->automount_root, sizeof(c->automount_root), "/mnt/");
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char line[2048], section[32] = "";
    while (fgets(line, sizeof(line), f)) {
        if (!strchr(line, '\n') && !feof(f)) { /* too long: skip the rest of it */
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            continue;
        }
        char *s = trim(line);
        if (*s == '#' || *s == ';' || *s == '\0')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end) {
                *end = '\0';
                set_str(section, sizeof(section), trim(s + 1));
            }
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim(s), *v = eq + 1;
        /* an inline comment after a value: "key = value # note" */
        char *hash = strstr(v, " #");
        if (hash)
            *hash = '\0';
        v = trim(v);
        if (!strcasecmp(section, "user") && !strcasecmp(k, "default"))
            set_str(c->default_user, sizeof(c->default_user), v);
        else if (!strcasecmp(section, "boot") && !strcasecmp(k, "command"))
            set_str(c->boot_command, sizeof(c->boot_command), v);
        else if (!strcasecmp(section, "network") && !strcasecmp(k, "hostname"))
            set_str(c->hostname, sizeof(c->hostname), v);
        else if (!strcasecmp(section, "network") && !strcasecmp(k, "generateHosts"))
            set_bool(&c->generate_hosts, v);
        else if (!strcasecmp(section, "network") && !strcasecmp(k, "generateResolvConf"))
            set_bool(&c->generate_resolv_conf, v);
        else if (!strcasecmp(section, "automount") && !strcasecmp(k, "enabled"))
            set_bool(&c->automount_enabled, v);
        else if (!strcasecmp(section, "automount") && !strcasecmp(k, "root"))
            set_str(c->automount_root, sizeof(c->automount_root), v);
        else if (!strcasecmp(section, "automount") && !strcasecmp(k, "options"))
            set_str(c->automount_options, sizeof(c->automount_options), v);
        else if (!strcasecmp(section, "automount") && !strcasecmp(k, "mountFsTab"))
            set_bool(&c->mount_fstab, v);
    }
    fclose(f);
}
