using System.Collections.Concurrent;
using System.Diagnostics;

namespace Billing.Bank;

/// <summary>A child process (silo or gateway) whose stdout and stderr go to a log file; killed with SIGKILL.</summary>
public sealed class Child
{
    private static readonly ConcurrentBag<Child> All = [];
    private Process? process;

    public Child(string name, string dll, string[] args, IDictionary<string, string> environment, string logFile)
    {
        Name = name;
        Dll = dll;
        Args = args;
        Environment = new Dictionary<string, string>(environment);
        LogFile = logFile;
        All.Add(this);
    }

    public string Name { get; }

    public string Dll { get; }

    public string[] Args { get; set; }

    public Dictionary<string, string> Environment { get; }

    public string LogFile { get; }

    public bool Running => process is { HasExited: false };

    public int? Pid => process?.Id;

    public void Start()
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(Dll)!,
        };
        info.ArgumentList.Add(Dll);
        foreach (var a in Args) info.ArgumentList.Add(a);
        foreach (var (k, v) in Environment) info.Environment[k] = v;
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var writer = TextWriter.Synchronized(new StreamWriter(LogFile, append: true) { AutoFlush = true });
        writer.WriteLine($"=== bank: starting {Name} at {DateTimeOffset.UtcNow:O}");
        var p = new Process { StartInfo = info, EnableRaisingEvents = true };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) Write(writer, e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Write(writer, e.Data); };
        p.Exited += (_, _) => Write(writer, $"=== bank: {Name} exited");
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        process = p;
    }

    private static void Write(TextWriter writer, string line)
    {
        try
        {
            writer.WriteLine(line);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>kill -9 (SIGKILL) of the process and its children.</summary>
    public void Kill()
    {
        var p = process;
        if (p is null) return;
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public static void KillAll()
    {
        foreach (var child in All) child.Kill();
    }
}
