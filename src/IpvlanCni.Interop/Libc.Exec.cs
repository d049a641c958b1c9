using System.Runtime.InteropServices;
using System.Text;

namespace IpvlanCni.Interop;

public static unsafe partial class Libc
{
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int execv(string path, byte** argv);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nint count);

    /// <summary>
    /// Replaces this process with <paramref name="program"/> from this executable's folder (execv, the environment
    /// kept), passing <paramref name="args"/>: an operator's subcommand lives in its own executable, so none of its
    /// code is mapped (fault-around makes every page of code near a used one resident) when a runtime calls the
    /// plugin. Returns only when the exec failed: 2, the reason on stderr.
    /// </summary>
    public static int ExecCompanion(string program, string[] args)
    {
        string path = Path.Combine(Path.GetDirectoryName(Environment.ProcessPath) ?? "/", program);
        // Never freed: on success the image is replaced, on failure the process ends.
        var argv = (byte**)NativeMemory.Alloc((nuint)(args.Length + 2), (nuint)sizeof(byte*));
        argv[0] = (byte*)Marshal.StringToCoTaskMemUTF8(path);
        for (int i = 0; i < args.Length; i++)
            argv[i + 1] = (byte*)Marshal.StringToCoTaskMemUTF8(args[i]);
        argv[args.Length + 1] = null;
        execv(path, argv);
        var error = ErrnoInfo.Last;
        byte[] message = Encoding.UTF8.GetBytes($"ipvlan-cni: cannot run {path}: {ErrnoInfo.Describe((int)error)}\n");
        fixed (byte* text = message)
            write(2, text, message.Length);
        return 2;
    }
}
