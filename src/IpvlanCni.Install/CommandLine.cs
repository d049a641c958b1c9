using System.Reflection;
using System.Text;
using IpvlanCni.Interop;

namespace IpvlanCni.Install;

/// <summary>A command line that cannot be run: the message says what is wrong, exit status 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// What subcommands share: the product version, stdout and stderr as plain streams (Console's would start a thread
/// and set up the terminal), and "--name VALUE" / "--name=VALUE" options.
/// </summary>
public static class CommandLine
{
    public const int UsageExitCode = 2;

    /// <summary>The repository's VERSION file, carried into every assembly by Directory.Build.props.</summary>
    public static string Version { get; } =
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    static TextWriter? _out, _error;

    public static TextWriter Out => _out ??= new StreamWriter(StandardStream.OpenOutput(), Utf8) { AutoFlush = true };
    public static TextWriter Error => _error ??= new StreamWriter(StandardStream.OpenError(), Utf8) { AutoFlush = true };

    /// <summary>
    /// Parses <paramref name="args"/> into the values of the options <paramref name="known"/> names (each takes one
    /// value, given once). Returns null when --help or -h is among them.
    /// </summary>
    public static Dictionary<string, string>? ParseOptions(string[] args, params string[] known)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg is "--help" or "-h")
                return null;
            if (!arg.StartsWith("--", StringComparison.Ordinal))
                throw new UsageException($"unexpected argument '{arg}' (options start with --)");
            int equals = arg.IndexOf('=');
            string name = equals < 0 ? arg : arg[..equals];
            if (!known.Contains(name))
                throw new UsageException($"unknown option '{name}' (expected {string.Join(", ", known)})");
            string value;
            if (equals >= 0)
                value = arg[(equals + 1)..];
            else if (i + 1 < args.Length)
                value = args[++i];
            else
                throw new UsageException($"{name} needs a value");
            if (value.Length == 0)
                throw new UsageException($"{name} needs a value, not an empty string");
            if (!values.TryAdd(name, value))
                throw new UsageException($"{name} is given twice");
        }
        return values;
    }

    public static string Required(Dictionary<string, string> options, string name) =>
        options.TryGetValue(name, out var value) ? value : throw new UsageException($"{name} is required");

    /// <summary>
    /// Runs a subcommand body: prints its report lines on stdout, or its refusal on stderr prefixed with the
    /// command's name, and returns the exit status (0, <see cref="UsageExitCode"/>, or the refusal's own).
    /// </summary>
    public static int Run(string command, string help, string[] args, Func<string[], IEnumerable<string>?> body)
    {
        try
        {
            var lines = body(args);
            if (lines is null)
            {
                Out.Write(help);
                return 0;
            }
            foreach (var line in lines)
                Out.WriteLine(line);
            return 0;
        }
        catch (UsageException e)
        {
            Error.WriteLine($"ipvlan-cni {command}: {e.Message}");
            Error.WriteLine($"Try 'ipvlan-cni {command} --help'.");
            return UsageExitCode;
        }
        catch (InstallException e)
        {
            Error.WriteLine($"ipvlan-cni {command}: {e.Message}");
            return (int)e.Problem;
        }
    }
}
