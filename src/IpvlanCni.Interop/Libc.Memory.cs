using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

public static partial class Libc
{
    const int M_ARENA_MAX = -8; // <malloc.h>

    [LibraryImport("libc")]
    private static partial int mallopt(int parameter, int value);

    /// <summary>
    /// One malloc arena for the whole process: glibc gives each new thread its own (a 64 MiB reservation and fresh
    /// resident pages), and a plugin's few short-lived threads never contend for malloc.
    /// </summary>
    public static void UseSingleMallocArena() => mallopt(M_ARENA_MAX, 1);
}
