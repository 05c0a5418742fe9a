/* /etc/wsl.conf, the per-distro settings file (INI), as WSL reads it. */
#ifndef JWSL_WSLCONF_H
#define JWSL_WSLCONF_H

struct wslconf {
    char default_user[64];      /* [user] default */
    char boot_command[1024];    /* [boot] command */
    char hostname[64];          /* [network] hostname */
    int generate_hosts;         /* [network] generateHosts, default 1 */
    int generate_resolv_conf;   /* [network] generateResolvConf, default 1 */
    int automount_enabled;      /* [automount] enabled, default 1 */
    char automount_root[256];   /* [automount] root, default /mnt/ */
    char automount_options[256];/* [automount] options */
    int mount_fstab;            /* [automount] mountFsTab, default 1 */
};

/* Fills c with the defaults, then with what path says; a missing file or bad line is skipped. */
void wslconf_load(const char *path, struct wslconf *c);

#endif
