using System.Globalization;
using System.Text;
using IpvlanCni.Interop;

namespace IpvlanCni.Cni;

/// <summary>What one invocation did, for <see cref="CniLog"/>.</summary>
public sealed record CniLogEntry(
    DateTimeOffset Start,
    string Command,
    string ContainerId,
    string IfName,
    string Network,
    TimeSpan Duration,
    CniException? Error);

/// <summary>
/// Appends one line per command to a file: never stdout (the runtime parses that) and never a reason to fail
/// the command. Each line is one write(2) on an O_APPEND descriptor, so concurrent plugin processes neither interleave
/// within a line nor lose one (the kernel moves the offset to the end and writes under one lock). The file must be
/// a regular file: a symlink at the path is refused (O_NOFOLLOW), a FIFO or device too, without ever blocking on one.
/// </summary>
public sealed class CniLog(string path)
{
    const int Mode = 0b110_100_000; // 0640

    public string Path { get; } = path;

    /// <summary>Why the last write failed, for tests and diagnostics; null after a good write.</summary>
    public string? LastFailure { get; private set; }

    public void Write(CniLogEntry entry)
    {
        try
        {
            var bytes = Encoding.UTF8.GetBytes(Format(entry));
            // Typed through O_PATH before it is opened for writing: a FIFO is refused, never opened (nor waited on).
            using var file = RegularFile.OpenForAppend(Path, Mode);
            Libc.WriteOnce(file, bytes);
            LastFailure = null;
        }
        catch (UnsafePathException e)
        {
            LastFailure = e.Message;
        }
        catch (SystemCallException e)
        {
            LastFailure = e.Message;
        }
    }

    /// <summary>
    /// Why <paramref name="path"/> cannot be the log ("is a symbolic link"), or null when it can (absent, or a regular
    /// file): for the configuration check, which refuses such a logFile with code 7.
    /// </summary>
    public static string? Problem(string path) => Libc.TryGetFileType(path) switch
    {
        null or Libc.S_IFREG => null,
        Libc.S_IFLNK => "is a symbolic link",
        _ => "is not a regular file",
    };

    /// <summary>2025-01-02T03:04:05.678Z ADD container=abc ifname=eth0 network=net1 duration_ms=12 ok</summary>
    public static string Format(CniLogEntry e)
    {
        var line = new StringBuilder(160);
        line.Append(e.Start.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture))
            .Append(' ').Append(Clean(e.Command))
            .Append(" container=").Append(Quote(e.ContainerId))
            .Append(" ifname=").Append(Quote(e.IfName))
            .Append(" network=").Append(Quote(e.Network))
            .Append(" duration_ms=").Append(((long)e.Duration.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        if (e.Error is null)
            line.Append(" ok");
        else
        {
            line.Append(" error code=").Append(e.Error.Code.ToString(CultureInfo.InvariantCulture))
                .Append(" msg=").Append(Quote(e.Error.Message));
            if (!string.IsNullOrEmpty(e.Error.Details))
                line.Append(" details=").Append(Quote(e.Error.Details));
        }
        return line.Append('\n').ToString();
    }

    // Values come from the environment and stdin: keep each entry on one line and unambiguous.
    static string Quote(string value)
    {
        if (value.Length > 0 && !value.Any(c => c is ' ' or '"' or '\\' or '=' || char.IsControl(c)))
            return value;
        return "\"" + Clean(value.Replace("\\", "\\\\").Replace("\"", "\\\"")) + "\"";
    }

    static string Clean(string value) =>
        string.Create(value.Length, value, (span, v) =>
        {
            for (int i = 0; i < v.Length; i++)
                span[i] = char.IsControl(v[i]) ? ' ' : v[i];
        });
}
