/*
 * The JNI half of dev.jwsl.protocol.relay.UnixStream: a blocking Unix-domain stream socket.
 *
 * Why JNI and not the JDK's SocketChannel or FFM: `wsl` is a new JVM per call, and the JDK's
 * Unix-domain SocketChannel seeds a SecureRandom in its static initializer (the security
 * properties file parsed, a provider set up: ~20 ms on the host, ~400 ms under emulation), while
 * binding a downcall through FFM spins classes (~40 ms). Loading this library and binding its
 * functions costs ~2 ms.
 *
 * Each function returns a non-negative result or -errno; the Java side turns errors into
 * IOExceptions. Data passes through a buffer on the C stack (at most STREAM_CHUNK bytes a call):
 * no pinned Java array while the call blocks.
 */
#include <jni.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define STREAM_CHUNK 65536

JNIEXPORT jint JNICALL
Java_dev_jwsl_protocol_relay_UnixStream_connect0(JNIEnv *env, jclass cls, jbyteArray path)
{
	struct sockaddr_un sa;
	jsize n = (*env)->GetArrayLength(env, path);
	int fd;

	(void) cls;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (n <= 0 || n >= (jsize) sizeof sa.sun_path)
		return -ENAMETOOLONG;
	(*env)->GetByteArrayRegion(env, path, 0, n, (jbyte *) sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		close(fd);
		return -e;
	}
	return fd;
}

JNIEXPORT jint JNICALL
Java_dev_jwsl_protocol_relay_UnixStream_read0(JNIEnv *env, jclass cls, jint fd, jbyteArray b, jint off, jint len)
{
	char buf[STREAM_CHUNK];
	ssize_t n;

	(void) cls;
	if (len > STREAM_CHUNK)
		len = STREAM_CHUNK;
	do
		n = read(fd, buf, (size_t) len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n > 0)
		(*env)->SetByteArrayRegion(env, b, off, (jsize) n, (const jbyte *) buf);
	return (jint) n;
}

/* MSG_NOSIGNAL: a peer gone is EPIPE here, never a SIGPIPE to the JVM. */
JNIEXPORT jint JNICALL
Java_dev_jwsl_protocol_relay_UnixStream_write0(JNIEnv *env, jclass cls, jint fd, jbyteArray b, jint off, jint len)
{
	char buf[STREAM_CHUNK];
	ssize_t n;

	(void) cls;
	if (len > STREAM_CHUNK)
		len = STREAM_CHUNK;
	(*env)->GetByteArrayRegion(env, b, off, len, (jbyte *) buf);
	do
		n = send(fd, buf, (size_t) len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (jint) n;
}

/* Wakes a thread blocked on fd (its read returns 0, its write fails) without freeing the number. */
JNIEXPORT jint JNICALL
Java_dev_jwsl_protocol_relay_UnixStream_shutdown0(JNIEnv *env, jclass cls, jint fd)
{
	(void) env;
	(void) cls;
	return shutdown(fd, SHUT_RDWR) < 0 ? -errno : 0;
}

JNIEXPORT jint JNICALL
Java_dev_jwsl_protocol_relay_UnixStream_close0(JNIEnv *env, jclass cls, jint fd)
{
	(void) env;
	(void) cls;
	return close(fd) < 0 ? -errno : 0;
}

JNIEXPORT jstring JNICALL
Java_dev_jwsl_protocol_relay_UnixStream_strerror0(JNIEnv *env, jclass cls, jint err)
{
	(void) cls;
	return (*env)->NewStringUTF(env, strerror(err));
}
