// Writing an output file whole or not at all, with write errors (disk full, a file-size limit) as errors.
#ifndef LLMC_COMPILER_WRITEOUTPUT_H
#define LLMC_COMPILER_WRITEOUTPUT_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

namespace llmc {

/// Writes `path` through a temporary file beside it, renamed into place only
/// when every byte was written ("-" is stdout). A write error (ENOSPC, EFBIG)
/// becomes an Error and leaves nothing behind, where llvm::writeToOutput
/// would rename the partial file and then abort on the stream's unchecked
/// error.
inline llvm::Error
writeOutput(llvm::StringRef path,
            llvm::function_ref<llvm::Error(llvm::raw_ostream &)> write) {
  auto streamError = [](llvm::raw_fd_ostream &os) -> llvm::Error {
    os.flush();
    if (!os.has_error()) {
      return llvm::Error::success();
    }
    std::error_code ec = os.error();
    os.clear_error();
    return llvm::createStringError(ec, "cannot write: " + ec.message());
  };
  if (path == "-") {
    if (llvm::Error e = write(llvm::outs())) {
      return e;
    }
    return streamError(llvm::outs());
  }
  if (path == "/dev/null") {
    // Checking that a compile succeeds; nothing to rename over.
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    if (ec) {
      return llvm::createStringError(ec, "cannot write: " + ec.message());
    }
    if (llvm::Error e = write(os)) {
      return e;
    }
    return streamError(os);
  }
  llvm::Expected<llvm::sys::fs::TempFile> temp =
      llvm::sys::fs::TempFile::create(path + ".tmp%%%%%%");
  if (!temp) {
    return temp.takeError();
  }
  llvm::Error result = llvm::Error::success();
  {
    llvm::raw_fd_ostream os(temp->FD, /*shouldClose=*/false);
    result = write(os);
    llvm::Error written = streamError(os);
    if (!result) {
      result = std::move(written);
    } else {
      llvm::consumeError(std::move(written));
    }
  }
  if (result) {
    llvm::consumeError(temp->discard());
    return result;
  }
  return temp->keep(path);
}

} // namespace llmc

#endif // LLMC_COMPILER_WRITEOUTPUT_H
