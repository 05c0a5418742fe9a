/* AF_VSOCK for the guest init: <linux/vm_sockets.h> is not on musl-gcc's include path. */
#ifndef JWSL_VSOCK_H
#define JWSL_VSOCK_H

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* struct sockaddr_vm (include/uapi/linux/vm_sockets.h) */
struct jwsl_sockaddr_vm {
    unsigned short svm_family;
    unsigned short svm_reserved1;
    unsigned int svm_port;
    unsigned int svm_cid;
    unsigned char svm_flags;
    unsigned char svm_zero[3];
};
#define JWSL_VMADDR_CID_ANY 0xffffffffu
#define JWSL_VMADDR_CID_HOST 2u

#endif
