using System.Globalization;
using MoEMesh.Routing.Models;
using Spectre.Console;

namespace MoEMesh.Node.Cli;

/// <summary>
/// Shows training as it goes: a Spectre.Console progress bar on a terminal, plain progress lines (about
/// every 2 % of the steps) when stdout is redirected, where Spectre's bar would print nothing. Every step
/// is also a row of the curves CSV.
/// </summary>
internal sealed class TrainingView : IDisposable
{
    private readonly StreamWriter _curves;
    private long _lastLine = -1;

    public TrainingView(string curvesPath)
    {
        _curves = new StreamWriter(curvesPath) { AutoFlush = false };
        _curves.WriteLine("step,epoch,loss,accuracy,router_loss,experts_per_sample,utilisation,fallbacks,failed_steps,samples_per_second,elapsed_seconds");
    }

    /// <summary>Whether the console can show a live bar.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="train"/>, giving it the step callback, with the bar or plain lines.</summary>
    public async Task<T> RunAsync<T>(long totalSteps, Func<Action<TrainingProgress>, Task<T>> train)
    {
        if (!Interactive) return await train(p => Step(p, null));
        T result = default!;
        await AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("training", maxValue: totalSteps);
                result = await train(p => Step(p, task));
                task.StopTask();
            });
        return result;
    }

    private void Step(TrainingProgress p, ProgressTask? task)
    {
        var last = p.Last;
        _curves.WriteLine(string.Join(',', new object[]
        {
            p.Step, Round(p.Epoch), Round(last.Loss), Round((double)last.Correct / last.Samples), Round(last.RouterLoss), Round(p.ExpertsPerSample),
            Round(last.Evenness), last.FellBack, p.FailedSteps, Round(p.SamplesPerSecond), Round(p.Elapsed.TotalSeconds),
        }.Select(v => Convert.ToString(v, CultureInfo.InvariantCulture))));
        var line = Describe(p);
        if (task is not null)
        {
            task.Description = line;
            task.Value = p.Step;
            return;
        }
        long every = Math.Max(1, p.TotalSteps / 50);
        if (p.Step == p.TotalSteps || p.Step == 1 || p.Step / every != _lastLine)
        {
            _lastLine = p.Step / every;
            Console.WriteLine(line);
        }
    }

    /// <summary>epoch, step, loss, accuracy, experts per text, utilisation, fallbacks, samples/s.</summary>
    public static string Describe(TrainingProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"epoch {p.Epoch:F2}  step {p.Step}/{p.TotalSteps}  loss {p.Loss:F3}  acc {p.Accuracy:P1}  experts/text {p.ExpertsPerSample:F2}  utilisation {(double.IsNaN(p.Utilisation) ? "-" : p.Utilisation.ToString("F2", CultureInfo.InvariantCulture))}  fallbacks {p.Last.FellBack}  failed steps {p.FailedSteps}  {p.SamplesPerSecond:F0} texts/s");

    public void Dispose() => _curves.Dispose();

    private static double Round(double value) => Math.Round(value, 5);
}
