using System.Runtime.InteropServices;

namespace IpvlanCni.Interop;

public static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execv(string path, nint* argv);

    /// <summary>
    /// Replaces this process with <paramref name="path"/> (same PID, so a service manager's signals reach it):
    /// returns only on failure, by throwing.
    /// </summary>
    public static void Exec(string path, IReadOnlyList<string> argv)
    {
        var pointers = new nint[argv.Count + 1];
        try
        {
            for (int i = 0; i < argv.Count; i++)
                pointers[i] = Marshal.StringToCoTaskMemUTF8(argv[i]);
            fixed (nint* p = pointers)
                execv(path, p);
            throw SystemCallException.FromLast($"execv {path}");
        }
        finally
        {
            foreach (var p in pointers)
                if (p != 0)
                    Marshal.FreeCoTaskMem(p);
        }
    }
}
