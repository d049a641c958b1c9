using System.Diagnostics;
using System.Runtime.InteropServices;

namespace IpvlanCni.Bench;

/// <summary>A finished child: exit code and wall time from spawn to reaped.</summary>
public sealed record Exited(int ProcessId, int ExitCode, TimeSpan Elapsed);

/// <summary>
/// Starts programs with posix_spawn (stdin and stdout from and to files, stderr inherited) and reaps them with
/// waitpid: no pipes, helper threads or async machinery of the bench's own competing with the plugins for the
/// sandbox's single CPU. The bench never uses System.Diagnostics.Process, whose SIGCHLD handling would race these
/// waits.
/// </summary>
public static class Spawner
{
    const int O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0x40, O_TRUNC = 0x200;
    const int EINTR = 4;

    public sealed record Child(int ProcessId, long StartTimestamp);

    /// <summary>Spawns file with arguments and exactly this environment; stdin reads stdinPath, stdout goes to stdoutPath.</summary>
    public static Child Start(string file, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment,
        string stdinPath, string stdoutPath)
    {
        var argv = ToStringArray([file, .. arguments]);
        var envp = ToStringArray([.. environment.Select(e => $"{e.Key}={e.Value}")]);
        IntPtr actions = Marshal.AllocHGlobal(256); // posix_spawn_file_actions_t is 80 bytes in glibc
        try
        {
            Check(posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(posix_spawn_file_actions_addopen(actions, 0, stdinPath, O_RDONLY, 0), "addopen stdin");
            Check(posix_spawn_file_actions_addopen(actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0x1a4), "addopen stdout");
            long start = Stopwatch.GetTimestamp();
            Check(posix_spawn(out int pid, file, actions, IntPtr.Zero, argv, envp), $"posix_spawn {file}");
            return new Child(pid, start);
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            Marshal.FreeHGlobal(actions);
            Free(argv);
            Free(envp);
        }
    }

    public const int SIGTERM = 15;

    /// <summary>kill(2) by the PID this bench started (etcd, agents): they stop on SIGTERM.</summary>
    public static void Signal(int pid, int signal)
    {
        if (kill(pid, signal) != 0)
            throw new InvalidOperationException($"kill({pid}, {signal}): errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Waits for this child.</summary>
    public static Exited Wait(Child child) => Reap(child.ProcessId, new Dictionary<int, Child> { [child.ProcessId] = child });

    /// <summary>Waits for all of them, in whatever order they end.</summary>
    public static List<Exited> WaitAll(IReadOnlyList<Child> children)
    {
        var pending = children.ToDictionary(c => c.ProcessId);
        var exited = new List<Exited>();
        while (pending.Count > 0)
            exited.Add(Reap(-1, pending));
        return exited;
    }

    static Exited Reap(int pid, Dictionary<int, Child> pending)
    {
        while (true)
        {
            int reaped = waitpid(pid, out int status, 0);
            long end = Stopwatch.GetTimestamp();
            if (reaped < 0)
            {
                if (Marshal.GetLastPInvokeError() == EINTR)
                    continue;
                throw new InvalidOperationException($"waitpid: errno {Marshal.GetLastPInvokeError()}");
            }
            if (!pending.Remove(reaped, out var child))
                continue; // not one of ours (strace's own children are reaped by strace)
            int exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
            return new Exited(reaped, exitCode, Stopwatch.GetElapsedTime(child.StartTimestamp, end));
        }
    }

    static IntPtr[] ToStringArray(IReadOnlyList<string> values)
    {
        var array = new IntPtr[values.Count + 1];
        for (int i = 0; i < values.Count; i++)
            array[i] = Marshal.StringToCoTaskMemUTF8(values[i]);
        return array;
    }

    static void Free(IntPtr[] array)
    {
        foreach (var p in array)
            if (p != IntPtr.Zero)
                Marshal.FreeCoTaskMem(p);
    }

    static void Check(int result, string call)
    {
        if (result != 0)
            throw new InvalidOperationException($"{call}: error {result}");
    }

#pragma warning disable SYSLIB1054 // a JIT-run tool: runtime marshalling is fine here
    [DllImport("libc", SetLastError = true)]
    static extern int posix_spawn(out int pid, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr fileActions,
        IntPtr attributes, IntPtr[] argv, IntPtr[] envp);

    [DllImport("libc")]
    static extern int posix_spawn_file_actions_init(IntPtr fileActions);

    [DllImport("libc")]
    static extern int posix_spawn_file_actions_addopen(IntPtr fileActions, int fd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc")]
    static extern int posix_spawn_file_actions_destroy(IntPtr fileActions);

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    [DllImport("libc", SetLastError = true)]
    static extern int waitpid(int pid, out int status, int options);
#pragma warning restore SYSLIB1054
}
