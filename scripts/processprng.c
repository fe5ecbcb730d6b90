/* Fills a gap in Wine 8: Rust's std for Windows imports ProcessPrng from
 * bcryptprimitives.dll, which Wine 8 lacks (the program then fails to load
 * with c0000135). This DLL provides it on top of RtlGenRandom
 * (SystemFunction036 in advapi32). Used only in the test Wine prefix. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
